"""The plan as data: per asset, the action, field-level before/after, and the exact PUT body.

Renderers (text, markdown, JSON) and apply read only this; nothing here knows about output.
A run covers one or more targets: :class:`Plan` is one target's plan, :class:`PlanSet` the run's.
The JSON form (``PlanSet.to_json``, a list of targets) is documented in docs/plan.md and
versioned by ``FORMAT_VERSION``; a saved plan file is that JSON plus the fingerprints apply needs
to detect staleness (``AssetPlan.live_fingerprint``).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from operator import attrgetter
from typing import Any

from reconciler.engine.safety import Crossing, SafetyPolicy, threshold
from reconciler.fieldpath import FieldPath, format_path, parse_path
from reconciler.jsonstream import Streamed

# 2.2: ignored fields and policy violations per asset; 2.1: items of ordered lists; 2.0: a list
# of targets; 1.x: one target
FORMAT_VERSION = "2.2"

Path = FieldPath


class Action(enum.StrEnum):
    UPDATE = "update"  # one PUT will be sent
    NOOP = "no-op"  # live matches the manifest; nothing is sent
    ERROR = "error"  # the asset could not be planned (missing, invalid for its type, API error)
    BLOCKED = "blocked"  # the asset exists but its state does not allow updates


class ChangeKind(enum.StrEnum):
    UPDATE = "update"  # ~ a value changes (scalars, ordered lists, nested objects)
    ADD = "add"  # + a field the live asset does not have yet
    REMOVE = "remove"  # - a value is cleared
    SET = "set"  # a set-like list: see FieldChange.added / removed
    WRITE_ONLY = "write-only"  # cannot be read back; sent because the manifest changed


@dataclass(frozen=True)
class ItemChange:
    """One item of a changed ordered list of objects, as the body sends it.

    The items of such a list are matched with live by an identity key (``policy.LIST_IDENTITY``),
    never by position, so each item says which live item it was matched with and which of its
    keys were filled from that item: the plan shows every value the body carries.  Live items
    that no manifest item matched come last, with ``after`` None: the body leaves them out.
    """

    before: Any  # the matched live item (raw); None for an item live does not have
    after: Any  # the item as sent; None for a live item that is not sent
    live_index: int | None = None  # the matched live item's position in the live list
    changed: tuple[str, ...] = ()  # keys of ``after`` whose value differs from ``before``
    kept: tuple[str, ...] = ()  # keys of ``after`` the manifest leaves out: kept from live

    def to_json(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "live_index": self.live_index,
            "changed": list(self.changed),
            "kept_from_live": list(self.kept),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemChange:
        return cls(
            before=data.get("before"),
            after=data.get("after"),
            live_index=data.get("live_index"),
            changed=tuple(data.get("changed", ())),
            kept=tuple(data.get("kept_from_live", ())),
        )


@dataclass(frozen=True)
class FieldChange:
    """One managed field that differs. ``before`` is None when live has no value."""

    path: Path
    kind: ChangeKind
    before: Any = None
    after: Any = None
    added: tuple[Any, ...] = ()  # for ChangeKind.SET
    removed: tuple[Any, ...] = ()  # for ChangeKind.SET
    # For a nested object sent whole: the changed leaves, each a FieldChange under this path.
    children: tuple[FieldChange, ...] = ()
    # For an ordered list of objects: every item the body sends (then the live items it drops).
    items: tuple[ItemChange, ...] = ()

    @property
    def dotted(self) -> str:
        return format_path(self.path)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.dotted,
            "kind": self.kind.value,
            "before": self.before,
            "after": self.after,
        }
        if self.kind is ChangeKind.SET:
            data["added"] = list(self.added)
            data["removed"] = list(self.removed)
        if self.children:
            data["children"] = [child.to_json() for child in self.children]
        if self.items:
            data["items"] = [item.to_json() for item in self.items]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FieldChange:
        return cls(
            path=parse_path(data["path"]),
            kind=ChangeKind(data["kind"]),
            before=data.get("before"),
            after=data.get("after"),
            added=tuple(data.get("added", ())),
            removed=tuple(data.get("removed", ())),
            children=tuple(cls.from_json(c) for c in data.get("children", ())),
            items=tuple(ItemChange.from_json(i) for i in data.get("items", ())),
        )


@dataclass(frozen=True)
class Ignored:
    """A field (or the matching entries of a set-like list) that an ignore rule took out of
    what the manifest manages (docs/ownership.md): ``kept`` holds the live entries kept."""

    path: str  # dotted, under spec
    rule: str
    pattern: str | None = None  # for the entries of a set-like list
    kept: tuple[Any, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "rule": self.rule}
        if self.pattern is not None:
            data["pattern"] = self.pattern
            data["kept_from_live"] = list(self.kept)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ignored:
        return cls(
            path=str(data["path"]),
            rule=str(data["rule"]),
            pattern=data.get("pattern"),
            kept=tuple(data.get("kept_from_live", ())),
        )


@dataclass(frozen=True)
class Violation:
    """A policy rule that refuses this asset's change (docs/policies.md); ``error`` is set when
    the rule could not be evaluated, which refuses the change too."""

    rule: str
    message: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "message": self.message, "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Violation:
        return cls(rule=str(data["rule"]), message=str(data["message"]), error=data.get("error"))


@dataclass(frozen=True)
class _Key:
    """One key of a class's JSON form: the attribute it holds and how its value is written and
    read back (None: as it is); ``default`` stands in for a key a document leaves out."""

    name: str
    dump: Callable[[Any], Any] | None = None
    load: Callable[[Any], Any] | None = None
    default: Any = None
    required: bool = False  # a document without this key cannot be read
    derived: bool = False  # written from a property; not read back


def _covering(cls: type, keys: tuple[_Key, ...], *, unsaved: set[str]) -> tuple[_Key, ...]:
    """``keys``, checked to name every field of ``cls`` but ``unsaved`` and nothing else: a field
    added without its key fails when the module is imported, not in a saved plan later."""
    saved = {f.name for f in dataclass_fields(cls)} - unsaved
    named = {key.name for key in keys if not key.derived}
    if saved != named:
        raise TypeError(f"{cls.__name__}: JSON keys and fields differ: {sorted(saved ^ named)}")
    return keys


def _dump(obj: Any, keys: tuple[_Key, ...], **given: Any) -> dict[str, Any]:
    """``obj`` as JSON, key by key in the order of ``keys``; ``given`` values are taken as
    they are (a streamed list of assets)."""
    data: dict[str, Any] = {}
    for key in keys:
        if key.name in given:
            data[key.name] = given[key.name]
            continue
        value = getattr(obj, key.name)
        data[key.name] = value if key.dump is None else key.dump(value)
    return data


def _load(data: Mapping[str, Any], keys: tuple[_Key, ...]) -> dict[str, Any]:
    """The constructor's arguments that a JSON object holds."""
    args: dict[str, Any] = {}
    for key in keys:
        if key.derived:
            continue
        value = data[key.name] if key.required else data.get(key.name, key.default)
        args[key.name] = value if key.load is None else key.load(value)
    return args


@dataclass
class AssetPlan:
    """What will happen to one asset."""

    asset_id: str
    action: Action
    name: str | None = None  # display name: the desired asset_name, else the live one
    asset_type: str | None = None
    source: str | None = None  # "manifests/voice.yaml:1:1"
    app_user_id: str | None = None
    changes: list[FieldChange] = field(default_factory=list)
    body: dict[str, Any] | None = None  # the exact PUT body; None unless action is UPDATE
    unchanged: int = 0  # managed fields that match live (Terraform's "unchanged attributes hidden")
    # Managed write-only fields not sent because they match the record of the last apply
    # (dotted); ones that are sent appear in ``changes`` with kind WRITE_ONLY instead.
    write_only: list[str] = field(default_factory=list)
    write_only_applied_at: str | None = None  # when those were last applied (RFC 3339)
    errors: list[str] = field(default_factory=list)
    error_code: str | None = None  # e.g. MSS.10001001 for a missing asset
    live_state: str | None = None
    live_fingerprint: str | None = None  # hash of the live asset's managed view, for staleness
    write_only_fingerprint: str | None = None  # recorded after a successful apply
    # How the live state was read: "list" (a ListAssets row) or "show" (ShowAsset, because the
    # row lacked a managed field or block).  The fresh read before the write reads the same way.
    live_read: str | None = None
    # The write-only state record the plan was made with ("<fingerprint>@<applied_at>", None
    # when there was none): a saved plan is stale when the record changed since.
    write_only_record: str | None = None
    # Fields the ignore rules took out of what the manifest manages, and the policy rules that
    # refuse the change (docs/ownership.md, docs/policies.md).
    ignored: list[Ignored] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    # The live asset the plan was made from (not saved: a saved plan keeps its fingerprint).
    live: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return _dump(self, _ASSET_KEYS)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AssetPlan:
        return cls(**_load(data, _ASSET_KEYS))


# AssetPlan's JSON form, key by key in the document's order (docs/plan.md).
_ASSET_KEYS = _covering(
    AssetPlan,
    (
        _Key("asset_id", required=True),
        _Key("name"),
        _Key("asset_type"),
        _Key("action", dump=attrgetter("value"), load=Action, required=True),
        _Key("source"),
        _Key("app_user_id"),
        _Key(
            "changes",
            dump=lambda changes: [c.to_json() for c in changes],
            load=lambda changes: [FieldChange.from_json(c) for c in changes],
            default=(),
        ),
        _Key("body"),
        _Key("unchanged", load=int, default=0),
        _Key("write_only", dump=list, load=list, default=()),
        _Key("write_only_applied_at"),
        _Key("errors", dump=list, load=list, default=()),
        _Key("error_code"),
        _Key("live_state"),
        _Key("live_fingerprint"),
        _Key("write_only_fingerprint"),
        _Key("live_read"),
        _Key("write_only_record"),
        _Key(
            "ignored",
            dump=lambda items: [i.to_json() for i in items],
            load=lambda items: [Ignored.from_json(i) for i in items],
            default=(),
        ),
        _Key(
            "violations",
            dump=lambda items: [v.to_json() for v in items],
            load=lambda items: [Violation.from_json(v) for v in items],
            default=(),
        ),
    ),
    unsaved={"live"},  # the live asset itself: a saved plan keeps its fingerprint instead
)


@dataclass
class Summary:
    to_change: int
    unchanged: int
    errors: int
    blocked: int
    ignored: int = 0  # fields (or entry patterns) left alone by ignore rules
    violations: int = 0  # assets whose change a policy rule refuses

    @property
    def has_changes(self) -> bool:
        return self.to_change > 0


@dataclass(frozen=True)
class Targeting:
    """A run narrowed by ``--asset`` / ``--selector`` (Terraform's ``-target``): how many of the
    target's manifests it covers, and the options that narrowed it (``--asset, --selector``)."""

    selected: int
    declared: int
    flags: str


@dataclass(frozen=True)
class Unmanaged:
    """A manifest document removed since the ``--changed-since`` revision: its asset is no
    longer managed, and nothing is sent for it."""

    asset_id: str
    file: str

    def to_json(self) -> dict[str, str]:
        return {"asset_id": self.asset_id, "file": self.file}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Unmanaged:
        return cls(str(data["asset_id"]), str(data["file"]))


@dataclass(frozen=True)
class ChangedSince:
    """A plan of the documents changed since a git revision (``--changed-since REF``):
    ``managed`` counts every managed asset of the target (an id scan of all its manifests), so
    that the safety threshold weighs the change against the whole fleet, not the few planned."""

    ref: str
    managed: int
    planned: int  # documents changed or added since ``ref``
    removed: tuple[Unmanaged, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "managed": self.managed,
            "planned": self.planned,
            "no_longer_managed": [item.to_json() for item in self.removed],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ChangedSince | None:
        if data is None:
            return None
        removed = tuple(Unmanaged.from_json(item) for item in data.get("no_longer_managed", ()))
        return cls(str(data["ref"]), int(data["managed"]), int(data["planned"]), removed)


@dataclass
class Plan:
    """One target's plan: every managed asset's AssetPlan, plus where the live state was read.

    ``error`` is set when the target as a whole could not be planned (unreachable, credentials
    rejected): then ``assets`` is empty and ``unplanned`` counts the manifests it would have held.
    The plan carries its target's safety threshold (``safety``) and, when the run was narrowed,
    its ``targeting``: whoever applies it checks :attr:`crossing` and cannot forget the
    target's settings.  Neither is part of the JSON form: a saved plan is checked against the
    settings of the run that applies it.
    """

    assets: list[AssetPlan]
    target: str | None = None
    project_id: str | None = None
    endpoint: str | None = None
    created_at: str | None = None  # RFC 3339, UTC
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    unplanned: int = 0
    safety: SafetyPolicy = field(default_factory=SafetyPolicy, compare=False)
    targeting: Targeting | None = field(default=None, compare=False)
    changed_since: ChangedSince | None = None

    @property
    def crossing(self) -> Crossing | None:
        """Where the plan crosses its target's safety threshold, else None."""
        return threshold(self, self.safety)

    def by_action(self, action: Action) -> list[AssetPlan]:
        return [a for a in self.assets if a.action is action]

    @property
    def summary(self) -> Summary:
        counts = Counter(a.action for a in self.assets)  # one pass: plans hold 100,000 rows
        return Summary(
            to_change=counts[Action.UPDATE],
            unchanged=counts[Action.NOOP],
            errors=counts[Action.ERROR],
            blocked=counts[Action.BLOCKED],
            ignored=sum(len(a.ignored) for a in self.assets if a.ignored),
            violations=sum(1 for a in self.assets if a.violations),
        )

    @property
    def violated(self) -> list[AssetPlan]:
        """The assets whose change a policy rule refuses."""
        return [a for a in self.assets if a.violations]

    def to_json(self, *, stream: bool = False) -> dict[str, Any]:
        """This target's entry of the plan document's ``targets`` list; with ``stream`` its
        assets are made as they are written (:mod:`reconciler.jsonstream`)."""
        if stream:
            data = _dump(self, _PLAN_KEYS, assets=Streamed(self.assets, AssetPlan.to_json))
        else:
            data = _dump(self, _PLAN_KEYS)
        if self.changed_since is None:  # a full run's plan reads as it always did
            del data["changed_since"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(**_load(data, _PLAN_KEYS))


def _summary_json(s: Summary) -> dict[str, int]:
    return {
        "to_change": s.to_change,
        "unchanged": s.unchanged,
        "errors": s.errors,
        "blocked": s.blocked,
        "ignored_fields": s.ignored,
        "violations": s.violations,
    }


# Plan's JSON form (one entry of the document's ``targets``), key by key in order.
_PLAN_KEYS = _covering(
    Plan,
    (
        _Key("target"),
        _Key("project_id"),
        _Key("endpoint"),
        _Key("created_at"),
        _Key("error"),
        _Key("unplanned", load=int, default=0),
        _Key("summary", dump=_summary_json, derived=True),
        _Key("warnings", dump=list, load=list, default=()),
        _Key(
            "changed_since",
            dump=lambda value: value.to_json() if value is not None else None,
            load=ChangedSince.from_json,
        ),
        _Key(
            "assets",
            dump=lambda assets: [a.to_json() for a in assets],
            load=lambda assets: [AssetPlan.from_json(a) for a in assets],
            default=(),
        ),
    ),
    # The run's settings, not the plan's: a saved plan is checked against the applying run's.
    unsaved={"safety", "targeting"},
)


@dataclass
class PlanSet:
    """A run's plan: one :class:`Plan` per target, in the order the run names them."""

    plans: list[Plan]
    created_at: str | None = None  # RFC 3339, UTC

    @classmethod
    def of(cls, data: Plan | PlanSet) -> PlanSet:
        """``data`` as a set (a single target's plan becomes a set of one)."""
        return data if isinstance(data, PlanSet) else cls([data], created_at=data.created_at)

    @property
    def assets(self) -> list[AssetPlan]:
        return [a for plan in self.plans for a in plan.assets]

    def by_action(self, action: Action) -> list[AssetPlan]:
        return [a for plan in self.plans for a in plan.by_action(action)]

    @property
    def failed(self) -> list[Plan]:
        """The targets that could not be planned at all."""
        return [plan for plan in self.plans if plan.error is not None]

    @property
    def warnings(self) -> list[str]:
        """Every target's warnings, each naming its target when the run has several."""
        several = len(self.plans) > 1
        return [
            f"target {plan.target}: {w}" if several and plan.target else w
            for plan in self.plans
            for w in plan.warnings
        ]

    @property
    def summary(self) -> Summary:
        parts = [plan.summary for plan in self.plans]
        return Summary(
            to_change=sum(p.to_change for p in parts),
            unchanged=sum(p.unchanged for p in parts),
            errors=sum(p.errors for p in parts),
            blocked=sum(p.blocked for p in parts),
            ignored=sum(p.ignored for p in parts),
            violations=sum(p.violations for p in parts),
        )

    @property
    def violated(self) -> list[tuple[str | None, AssetPlan]]:
        """Every asset whose change a policy rule refuses, with its target."""
        return [(plan.target, a) for plan in self.plans for a in plan.violated]

    @property
    def has_errors(self) -> bool:
        """An asset or a whole target could not be planned (exit code 1)."""
        return bool(self.failed) or self.summary.errors > 0

    def to_json(self, *, stream: bool = False) -> dict[str, Any]:
        """The plan document; with ``stream`` each target's assets are made as they are written
        (a document to encode with :mod:`reconciler.jsonstream`, not with ``json.dumps``)."""
        return {
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "summary": {**_summary_json(self.summary), "failed_targets": len(self.failed)},
            "targets": [plan.to_json(stream=stream) for plan in self.plans],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanSet:
        """Read a 2.x document, or a 1.x one (a single target's fields at the top level)."""
        version = str(data.get("format_version", ""))
        if version.split(".")[0] == "1":
            plan = Plan.from_json(data)
            return cls([plan], created_at=plan.created_at)
        return cls([Plan.from_json(t) for t in data["targets"]], created_at=data.get("created_at"))
