"""Ignore and policy rules as written in ``reconciler.yaml`` (and ``metadata.ignore``): parsed
and checked here, applied by the engine (``engine/ignore.py``, ``engine/guardrails.py``).

A rule that names a field the Update Asset body does not have, or that cannot be honoured (the
entries of a list whose order matters, a part of a write-only field), is refused when the file
is read, with a "did you mean" hint: a typo must not silently leave a field managed.  Policy
conditions are compiled here too, so that a broken expression stops every command (and
``validate``) before anything is read.  See docs/ownership.md and docs/policies.md.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.api.fields import READ_ONLY_FIELDS, WRITE_ONLY_FIELDS

SPEC = "spec"
SYSTEM_PROPERTIES = "system_properties"
# The set-like lists (docs/field-semantics.md rule 4) whose entries a rule may leave alone by
# pattern; the write-only one is absent: it is never read back, so live entries cannot be kept.
ENTRY_LISTS: frozenset[tuple[str, ...]] = frozenset(
    {
        ("tags",),
        ("supported_service",),
        ("asset_extra_meta", "voice_model_meta", "languages"),
        ("asset_extra_meta", "human_model_2d_meta", "device_names"),
    }
)
INSTALL_POLICIES = "pip install 'metastudio-reconciler[policies]'"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_ENTRY = re.compile(r"^(?P<path>[^\[\]]+)\[(?P<glob>[^\[\]]+)\]$")
_MATCH_KEYS = ("asset_type", "labels", "asset_ids")


class RuleError(ValueError):
    """A rule that cannot be used; the message names the key (``paths[0]``) and the problem."""


@dataclass(frozen=True)
class Match:
    """Which assets a rule is about: every given key must hold (an empty match holds for all)."""

    asset_types: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)
    asset_ids: frozenset[str] = frozenset()

    def covers(self, asset_id: str, asset_type: str | None, labels: Mapping[str, str]) -> bool:
        if self.asset_ids and asset_id not in self.asset_ids:
            return False
        if self.asset_types and asset_type not in self.asset_types:
            return False
        return all(labels.get(key) == value for key, value in self.labels.items())


@dataclass(frozen=True)
class IgnorePath:
    """One field a rule leaves alone: ``path`` under ``spec``; with ``entries``, only the
    entries of that set-like list that match the glob."""

    path: tuple[str, ...]
    entries: str | None = None

    @property
    def text(self) -> str:
        dotted = ".".join(self.path)
        return f"{dotted}[{self.entries}]" if self.entries else dotted


@dataclass(frozen=True)
class IgnoreRule:
    name: str
    paths: tuple[IgnorePath, ...]
    match: Match = field(default_factory=Match)


@dataclass(frozen=True)
class PolicyRule:
    """A guard rail: ``deny`` is a CEL expression; true refuses the change."""

    name: str
    deny: str
    message: str
    match: Match = field(default_factory=Match)
    program: Any = field(default=None, compare=False, repr=False)  # the compiled expression


# --- field paths --------------------------------------------------------------------------


def _model_in(annotation: Any) -> Any:
    """The request model inside ``X | None`` / ``Annotated[X, ...]`` (None for lists and
    plain values: a rule does not reach into the items of a list)."""
    from pydantic import BaseModel

    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return None
            annotation = args[0]
        else:
            break
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


# Every field path a rule may name (under ``spec``): the Update Asset body's fields, nested
# objects walked, lists not, read-only fields and the parts of write-only ones left out.  Kept as
# a table so that reading reconciler.yaml needs no request model (a plan's process never loads
# them); tests/api/test_rules.py checks it against the models (:func:`derive_known_paths`).
KNOWN_PATHS: tuple[tuple[str, ...], ...] = tuple(
    tuple(text.split("."))
    for text in (
        "asset_name",
        "asset_description",
        "asset_type",
        "asset_state",
        "review_config",
        "tags",
        "asset_extra_meta",
        "asset_extra_meta.voice_model_meta",
        "asset_extra_meta.voice_model_meta.order",
        "asset_extra_meta.voice_model_meta.model_type",
        "asset_extra_meta.voice_model_meta.sex",
        "asset_extra_meta.voice_model_meta.language",
        "asset_extra_meta.voice_model_meta.languages",
        "asset_extra_meta.voice_model_meta.speed_ratio",
        "asset_extra_meta.voice_model_meta.volume_ratio",
        "asset_extra_meta.voice_model_meta.is_realtime_voice",
        "asset_extra_meta.voice_model_meta.style",
        "asset_extra_meta.voice_model_meta.external_voice_meta",
        "asset_extra_meta.voice_model_meta.external_voice_meta.provider",
        "asset_extra_meta.voice_model_meta.is_support_vc_process",
        "asset_extra_meta.voice_model_meta.is_support_thai_auto_split",
        "asset_extra_meta.voice_model_meta.is_flexus",
        "asset_extra_meta.voice_model_meta.is_enhance_rhythm",
        "asset_extra_meta.voice_model_meta.age",
        "asset_extra_meta.ppt_meta",
        "asset_extra_meta.ppt_meta.auto_analysis",
        "asset_extra_meta.ppt_meta.page_count",
        "asset_extra_meta.ppt_meta.pages",
        "asset_extra_meta.material_meta",
        "asset_extra_meta.material_meta.components",
        "asset_extra_meta.human_model_2d_meta",
        "asset_extra_meta.human_model_2d_meta.is_action_editable",
        "asset_extra_meta.human_model_2d_meta.is_live_copy",
        "asset_extra_meta.human_model_2d_meta.is_real_background",
        "asset_extra_meta.human_model_2d_meta.support_live",
        "asset_extra_meta.human_model_2d_meta.model_version",
        "asset_extra_meta.human_model_2d_meta.model_resolution",
        "asset_extra_meta.human_model_2d_meta.device_names",
        "asset_extra_meta.human_model_2d_meta.is_with_action_library",
        "asset_extra_meta.human_model_2d_meta.action_tag_map",
        "asset_extra_meta.human_model_2d_meta.is_flexus",
        "asset_extra_meta.human_model_2d_meta.voice_asset_id",
        "system_properties",
        "shared_config",
        "asset_order",
        "supported_service",
        "auto_operation_config",
    )
)


_KNOWN = frozenset(KNOWN_PATHS)


def known_paths() -> tuple[tuple[str, ...], ...]:
    """Every field path a rule may name, in the body's order."""
    return KNOWN_PATHS


def derive_known_paths() -> list[tuple[str, ...]]:
    """:data:`KNOWN_PATHS` as the request models give it."""
    from reconciler.api.models import UpdateDigitalAssetRequestBody

    out: list[tuple[str, ...]] = []

    def walk(model: Any, prefix: tuple[str, ...]) -> None:
        for name, info in model.model_fields.items():
            path = (*prefix, name)
            if any(path[: len(ro)] == ro for ro in READ_ONLY_FIELDS):
                continue
            out.append(path)
            sub = _model_in(info.annotation)
            if sub is not None and not (len(path) == 1 and name in WRITE_ONLY_FIELDS):
                walk(sub, path)

    walk(UpdateDigitalAssetRequestBody, ())
    return out


def _hint(text: str) -> str:
    candidates = [f"{SPEC}." + ".".join(p) for p in known_paths()]
    candidates += [f"{SPEC}.{'.'.join(p)}[PATTERN]" for p in sorted(ENTRY_LISTS)]
    close = difflib.get_close_matches(text, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_path(text: Any) -> IgnorePath:
    """``spec.a.b`` or ``spec.tags[campaign-*]``, checked against the Update Asset body."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError("expected a field path like spec.asset_order or spec.tags[campaign-*]")
    entries: str | None = None
    body = text.strip()
    found = _ENTRY.match(body)
    if found:
        body, entries = found["path"], found["glob"]
    parts = tuple(body.split("."))
    if parts[0] != SPEC or len(parts) < 2 or not all(parts):
        raise RuleError(f"{text!r}: a field path starts with spec. (e.g. spec.asset_order)")
    path = parts[1:]
    if path[0] in WRITE_ONLY_FIELDS and len(path) > 1:
        raise RuleError(
            f"{text!r}: {path[0]} is write-only (never read back), so a part of it cannot be "
            f"kept as live holds it; ignore it whole (spec.{path[0]})"
        )
    if any(path[: len(ro)] == ro for ro in READ_ONLY_FIELDS):
        raise RuleError(f"{text!r}: a read-only field is never managed; nothing to ignore")
    per_key = len(path) == 2 and path[0] == SYSTEM_PROPERTIES
    if path not in _KNOWN and not (per_key and entries is None):
        raise RuleError(f"{text!r}: no such field in an asset's spec{_hint(text)}")
    if entries is not None and path not in ENTRY_LISTS:
        lists = ", ".join(f"spec.{'.'.join(p)}" for p in sorted(ENTRY_LISTS))
        raise RuleError(
            f"{text!r}: entries can be ignored by pattern only in a set-like list ({lists})"
        )
    return IgnorePath(path, entries)


# --- rules ----------------------------------------------------------------------------------


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list) or not value:
        raise RuleError(f"{where}: expected a non-empty list of strings")
    if not all(isinstance(v, str) and v for v in value):
        raise RuleError(f"{where}: expected a non-empty list of strings")
    return list(value)


def parse_match(value: Any, where: str) -> Match:
    """``match: {asset_type: [...], labels: {k: v}, asset_ids: [...]}`` (each key optional)."""
    if value is None:
        return Match()
    if not isinstance(value, dict):
        raise RuleError(f"{where}: expected a mapping with asset_type, labels or asset_ids")
    for key in value:
        if key not in _MATCH_KEYS:
            raise RuleError(f"{where}.{key}: unknown key (allowed: {', '.join(_MATCH_KEYS)})")
    labels = value.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise RuleError(f'{where}.labels: expected a mapping of label to text, e.g. {{team: "a"}}')
    types_ = value.get("asset_type")
    ids = value.get("asset_ids")
    return Match(
        asset_types=frozenset(
            _strings(types_, f"{where}.asset_type") if types_ is not None else ()
        ),
        labels=dict(labels),
        asset_ids=frozenset(_strings(ids, f"{where}.asset_ids") if ids is not None else ()),
    )


def _entry(value: Any, where: str, keys: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    if not isinstance(value, dict):
        raise RuleError(f"{where}: expected a mapping with {', '.join(keys)}")
    for key in value:
        if key not in keys:
            close = difflib.get_close_matches(str(key), keys, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RuleError(f"{where}.{key}: unknown key (allowed: {', '.join(keys)}){hint}")
    name = value.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RuleError(
            f"{where}.name: expected a rule name (letters, digits, '-', '_' or '.', at most 63)"
        )
    return value, name


def _unique(names: Iterable[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise RuleError(f"{where}: two rules are named {name!r}")
        seen.add(name)


def parse_ignore(value: Any, where: str = "ignore") -> tuple[IgnoreRule, ...]:
    """An ``ignore:`` list of reconciler.yaml."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RuleError(f"{where}: expected a list of rules with name and paths")
    rules = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        data, name = _entry(item, at, ("name", "paths", "match"))
        paths = _strings(data.get("paths"), f"{at}.paths")
        parsed = []
        for number, text in enumerate(paths):
            try:
                parsed.append(parse_path(text))
            except RuleError as exc:
                raise RuleError(f"{at}.paths[{number}]: {exc}") from None
        rules.append(IgnoreRule(name, tuple(parsed), parse_match(data.get("match"), f"{at}.match")))
    _unique((r.name for r in rules), where)
    return tuple(rules)


def manifest_rule(paths: Iterable[str]) -> IgnoreRule:
    """The rule of a manifest's own ``metadata.ignore`` (paths already checked)."""
    return IgnoreRule("metadata.ignore", tuple(parse_path(p) for p in paths))


@functools.cache
def _cel() -> Any:
    """The CEL engine (the package's compiled extension module).

    The package's ``__init__`` also imports its command-line tool and that tool's terminal
    libraries, 0.18 s of a plan's CPU; the extension alone loads in 0.01 s, so it is loaded by
    itself when it can be found, the package as a whole otherwise (``None``: not installed).
    """
    import importlib.machinery
    import importlib.util
    import sys

    if "cel" in sys.modules and sys.modules["cel"] is None:  # imports of it are refused
        return None
    try:
        package = importlib.util.find_spec("cel")
    except (ImportError, ValueError):
        package = None
    if package is None:
        return None
    loaded = sys.modules.get("cel.cel")
    if loaded is not None:
        return loaded
    try:
        finder = importlib.machinery.FileFinder(
            next(iter(package.submodule_search_locations or ())),
            (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
        )
        spec = finder.find_spec("cel.cel")
        if spec is None or spec.loader is None:
            raise ImportError("no compiled extension")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["cel.cel"] = module
        return module
    except (ImportError, OSError, StopIteration):
        import cel

        return cel


def compile_condition(text: str) -> Any:
    """The compiled CEL program of a ``deny`` condition (``RuleError``: not installed, or the
    expression does not parse)."""
    engine = _cel()
    if engine is None:
        raise RuleError(
            f"policy rules need the CEL library, which is not installed: {INSTALL_POLICIES}"
        )
    try:
        return engine.compile(text)
    except (ValueError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())
        raise RuleError(f"the condition does not parse: {detail}") from None


def parse_policies(value: Any, where: str = "policies") -> tuple[PolicyRule, ...]:
    """A ``policies:`` list of reconciler.yaml, each condition compiled."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RuleError(f"{where}: expected a list of rules with name, deny and message")
    rules = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        data, name = _entry(item, at, ("name", "match", "deny", "message"))
        deny, message = data.get("deny"), data.get("message")
        if not isinstance(deny, str) or not deny.strip():
            raise RuleError(f"{at}.deny: expected a CEL expression (true refuses the change)")
        if not isinstance(message, str) or not message.strip():
            raise RuleError(f"{at}.message: expected the text shown with a violation")
        try:
            program = compile_condition(deny)
        except RuleError as exc:
            raise RuleError(f"{at} ({name}).deny: {exc}") from None
        rules.append(
            PolicyRule(name, deny, message, parse_match(data.get("match"), f"{at}.match"), program)
        )
    _unique((r.name for r in rules), where)
    return tuple(rules)
