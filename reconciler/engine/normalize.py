"""Canonical forms: values the service treats alike compare equal (docs/field-semantics.md §8).

``canon`` maps a value at a path to a form in which equality means "the same to the service":
integral floats become ints (1 == 1.0), RFC 3339 timestamps become UTC instants, set-like lists
are sorted and de-duplicated, ``system_properties`` becomes a map.  Strings are kept exactly.
``project_live`` cuts the live asset down to the shape the manifest declares and fills absent
fields with the value the API treats as equal (policy.ABSENT_EQUALS), so an unmanaged field can
never show up as a change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from reconciler.engine import policy
from reconciler.fieldpath import FieldPath

Path = FieldPath
_SP_PATH: Path = (policy.SYSTEM_PROPERTIES,)


def prune_none(value: Any) -> Any:
    """Drop null values from dicts, recursively: ``key: null`` in a manifest means "unmanaged"."""
    if isinstance(value, dict):
        return {k: prune_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_none(v) for v in value]
    return value


def parse_instant(text: str) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime, or None when it is not one."""
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def canon_instant(text: str) -> str:
    """``2025-01-10T08:00:00+08:00`` -> ``2025-01-10T00:00:00.000000Z``; other text unchanged."""
    instant = parse_instant(text)
    if instant is None:
        return text
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sort_key(value: Any) -> str:
    if isinstance(value, str):
        return "s" + value
    return "j" + json.dumps(value, sort_keys=True, ensure_ascii=False)


def system_properties_map(value: Any) -> dict[str, Any]:
    """The live list ``[{key, value}]`` (or an already declared map) as ``{KEY: value}``."""
    if isinstance(value, Mapping):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value or ():
        if isinstance(item, Mapping) and item.get("key") is not None:
            out[str(item["key"])] = item.get("value")
    return out


# Last path segments that can name a timestamp or a set-like list: a cheap pre-check, so most
# values skip the table lookup.
_TIME_NAMES = frozenset(p[-1] for p in policy.TIMESTAMPS)
_SET_NAMES = frozenset(p[-1] for p in policy.SET_LIKE)


def canon(path: Path, value: Any) -> Any:
    """The canonical form of ``value`` found at ``path`` (see module docstring).

    Every live asset is canonicalised once per plan (and its fingerprint once more), so the
    common shapes (plain dicts and lists of strings, numbers and booleans) take a fast path that
    handles leaves in place instead of recursing into them; other values take the general one.
    """
    kind = type(value)
    if kind is str:
        if not (path and path[-1] in _TIME_NAMES):
            return value
    elif path != _SP_PATH:
        if kind is dict:
            return _canon_dict(path, value)
        if kind is list:
            return _canon_list(path, value)
    return _canon_any(path, value)


def _canon_dict(path: Path, value: dict[Any, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, item in value.items():
        kind = type(item)
        if kind is str:
            out[key] = canon((*path, key), item) if key in _TIME_NAMES else item
        elif kind is int or kind is bool:
            out[key] = item
        elif item is not None:
            out[key] = canon((*path, key), item)
    return out


def _canon_list(path: Path, value: list[Any]) -> list[Any]:
    if path and path[-1] in _SET_NAMES and policy.pattern(path) in policy.SET_LIKE:
        if all(type(item) is str for item in value):  # the usual set: tags, service names
            return sorted(set(value))
        result: list[Any] = _canon_any(path, value)
        return result
    # A list item's path ends in an index, which names no timestamp: strings stay as they are.
    return [
        item
        if (kind := type(item)) is str or kind is int or kind is bool or item is None
        else canon((*path, index), item)
        for index, item in enumerate(value)
    ]


def _canon_any(path: Path, value: Any) -> Any:
    if isinstance(value, str):
        if path and path[-1] in _TIME_NAMES and policy.pattern(path) in policy.TIMESTAMPS:
            return canon_instant(value)
        return value
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if path == _SP_PATH:
        return {k: canon((*path, k), v) for k, v in system_properties_map(value).items()}
    if isinstance(value, Mapping):
        return {k: canon((*path, k), v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        if path and path[-1] in _SET_NAMES and policy.pattern(path) in policy.SET_LIKE:
            unique = {_sort_key(item): item for item in (canon((*path, 0), v) for v in value)}
            return [unique[key] for key in sorted(unique)]
        return [canon((*path, i), v) for i, v in enumerate(value)]
    return value


def absent_value(path: Path) -> Any:
    """What an absent live field at ``path`` is equal to (None when absence is its own value)."""
    found = policy.ABSENT_EQUALS.get(policy.pattern(path))
    # Copy mutable defaults so a caller cannot change the table.
    return type(found)() if isinstance(found, list | dict) else found


def project_live(path: Path, desired: Any, live: Any) -> Any:
    """Canonical live value cut to the shape of ``desired`` with absent fields filled.

    Only the keys the manifest declares are kept; lists of objects are projected element by
    element, so fields the service adds to list items do not count as drift.
    """
    if live is None:
        live = absent_value(path)
        if live is None and isinstance(desired, Mapping) and path != (policy.SYSTEM_PROPERTIES,):
            live = {}
    if path == (policy.SYSTEM_PROPERTIES,):
        # Managed per key: only the declared keys count; an absent key is null.
        have = system_properties_map(live)
        return {k: canon((*path, k), have.get(k)) for k in system_properties_map(desired)}
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        out_map: dict[Any, Any] = {}
        for key, want in desired.items():
            found: Any = live.get(key)
            kind = type(found)
            # A string, number or boolean is its own canonical form (unless it names a time).
            if (kind is str and key not in _TIME_NAMES) or kind is int or kind is bool:
                out_map[key] = found
            else:
                out_map[key] = project_live((*path, key), want, found)
        return out_map
    if (
        isinstance(desired, list)
        and isinstance(live, list)
        and policy.pattern(path) not in policy.SET_LIKE
    ):
        out: list[Any] = []
        for i, item in enumerate(live):
            if i < len(desired) and isinstance(desired[i], Mapping):
                out.append(project_live((*path, i), desired[i], item))
            else:
                out.append(canon((*path, i), item))
        return out
    return canon(path, live)


def is_empty(value: Any) -> bool:
    """Absent, or an empty string, list or map: the manifest asks for "nothing"."""
    return value is None or (isinstance(value, str | list | dict | tuple) and len(value) == 0)


# One encoder for every call (``json.dumps`` with options builds a new one each time).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any, path: Path = ()) -> str:
    """Stable JSON text for hashing: sorted keys, no whitespace, integral floats as ints;
    ``path`` is where ``value`` stands in the asset (a set-like list is known by its path)."""
    return _CANONICAL.encode(canon(path, value))
