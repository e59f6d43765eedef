"""Ignore rules applied to one asset's spec before the diff (docs/ownership.md).

A field a rule names leaves the spec: it is not diffed, not sent and not drift, and a whole
block that is sent because another of its fields changed carries the live value of it (the
block is filled from live, engine.blocks).  The entries of a set-like list that match a rule's
pattern are taken from live instead of the manifest: live entries that match are kept, the
manifest's entries that match are not added, and the manifest's other entries are enforced;
the list that results is what the diff compares, what the plan shows and what the PUT sends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from reconciler.api.rules import IgnorePath, IgnoreRule
from reconciler.engine.plan import Ignored


def applicable(
    rules: Sequence[IgnoreRule], asset_id: str, asset_type: str | None, labels: Mapping[str, str]
) -> list[IgnoreRule]:
    """The rules whose match covers this asset."""
    return [rule for rule in rules if rule.match.covers(asset_id, asset_type, labels)]


def _get(tree: Any, path: Sequence[str]) -> Any:
    for part in path:
        if not isinstance(tree, Mapping):
            return None
        tree = tree.get(part)
    return tree


def _without(tree: Mapping[str, Any], path: Sequence[str]) -> dict[str, Any]:
    """``tree`` without the field at ``path`` (copies along the path only); a mapping left empty
    by the removal goes too, so that an emptied block is not managed as ``{}``."""
    out = dict(tree)
    head = path[0]
    if len(path) == 1:
        out.pop(head, None)
        return out
    child = out.get(head)
    if isinstance(child, Mapping):
        rest = _without(child, path[1:])
        if rest:
            out[head] = rest
        else:
            out.pop(head)
    return out


def _with(tree: Mapping[str, Any], path: Sequence[str], value: Any) -> dict[str, Any]:
    out = dict(tree)
    if len(path) == 1:
        out[path[0]] = value
    else:
        out[path[0]] = _with(out.get(path[0]) or {}, path[1:], value)
    return out


def _matches(item: Any, pattern: str) -> bool:
    return isinstance(item, str) and fnmatchcase(item, pattern)


def merged_entries(want: Sequence[Any], have: Any, pattern: str) -> tuple[list[Any], list[Any]]:
    """The list to enforce: the manifest's entries that do not match ``pattern``, then the live
    ones that do (in live order); and those live entries (kept)."""
    kept = [item for item in have if _matches(item, pattern)] if isinstance(have, list) else []
    out = [item for item in want if not _matches(item, pattern)]
    for item in kept:
        if item not in out:
            out.append(item)
    return out, kept


def apply_ignore(
    spec: dict[str, Any], live: Mapping[str, Any], rules: Sequence[IgnoreRule]
) -> tuple[dict[str, Any], list[Ignored]]:
    """``spec`` as the rules leave it to be managed, and what each rule took out of it.

    Only what the manifest declares is reported: a field it leaves out is not managed anyway.
    """
    ignored: list[Ignored] = []
    for rule in rules:
        for target in rule.paths:
            declared = _get(spec, target.path)
            if declared is None:
                continue
            spec = _apply_one(spec, live, rule.name, target, declared, ignored)
    return spec, ignored


def _apply_one(
    spec: dict[str, Any],
    live: Mapping[str, Any],
    rule: str,
    target: IgnorePath,
    declared: Any,
    ignored: list[Ignored],
) -> dict[str, Any]:
    dotted = ".".join(target.path)
    if target.entries is None:
        ignored.append(Ignored(dotted, rule))
        return _without(spec, target.path)
    if not isinstance(declared, list):
        return spec
    merged, kept = merged_entries(declared, _get(live, target.path), target.entries)
    ignored.append(Ignored(dotted, rule, pattern=target.entries, kept=tuple(kept)))
    return _with(spec, target.path, merged)
