"""The plan as data: per asset, the action, field-level before/after, and the exact PUT body.

Renderers (text, markdown, JSON) and apply read only this; nothing here knows about output.
The JSON form (``Plan.to_json``) is documented in docs/plan.md and versioned by
``FORMAT_VERSION``; a saved plan file is that JSON plus the fingerprints apply needs to detect
staleness (``AssetPlan.live_fingerprint``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from reconciler.fieldpath import FieldPath, format_path, parse_path

FORMAT_VERSION = "1.0"

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
        )


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

    def to_json(self) -> dict[str, Any]:
        return {
            "asset_id": self.asset_id,
            "name": self.name,
            "asset_type": self.asset_type,
            "action": self.action.value,
            "source": self.source,
            "app_user_id": self.app_user_id,
            "changes": [c.to_json() for c in self.changes],
            "body": self.body,
            "unchanged": self.unchanged,
            "write_only": list(self.write_only),
            "write_only_applied_at": self.write_only_applied_at,
            "errors": list(self.errors),
            "error_code": self.error_code,
            "live_state": self.live_state,
            "live_fingerprint": self.live_fingerprint,
            "write_only_fingerprint": self.write_only_fingerprint,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AssetPlan:
        return cls(
            asset_id=data["asset_id"],
            action=Action(data["action"]),
            name=data.get("name"),
            asset_type=data.get("asset_type"),
            source=data.get("source"),
            app_user_id=data.get("app_user_id"),
            changes=[FieldChange.from_json(c) for c in data.get("changes", ())],
            body=data.get("body"),
            unchanged=int(data.get("unchanged", 0)),
            write_only=list(data.get("write_only", ())),
            write_only_applied_at=data.get("write_only_applied_at"),
            errors=list(data.get("errors", ())),
            error_code=data.get("error_code"),
            live_state=data.get("live_state"),
            live_fingerprint=data.get("live_fingerprint"),
            write_only_fingerprint=data.get("write_only_fingerprint"),
        )


@dataclass
class Summary:
    to_change: int
    unchanged: int
    errors: int
    blocked: int

    @property
    def has_changes(self) -> bool:
        return self.to_change > 0


@dataclass
class Plan:
    """Every managed asset's AssetPlan, plus where the live state was read."""

    assets: list[AssetPlan]
    target: str | None = None
    project_id: str | None = None
    endpoint: str | None = None
    created_at: str | None = None  # RFC 3339, UTC
    warnings: list[str] = field(default_factory=list)

    def by_action(self, action: Action) -> list[AssetPlan]:
        return [a for a in self.assets if a.action is action]

    @property
    def summary(self) -> Summary:
        return Summary(
            to_change=len(self.by_action(Action.UPDATE)),
            unchanged=len(self.by_action(Action.NOOP)),
            errors=len(self.by_action(Action.ERROR)),
            blocked=len(self.by_action(Action.BLOCKED)),
        )

    def to_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "target": self.target,
            "project_id": self.project_id,
            "endpoint": self.endpoint,
            "summary": {
                "to_change": s.to_change,
                "unchanged": s.unchanged,
                "errors": s.errors,
                "blocked": s.blocked,
            },
            "warnings": list(self.warnings),
            "assets": [a.to_json() for a in self.assets],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            assets=[AssetPlan.from_json(a) for a in data.get("assets", ())],
            target=data.get("target"),
            project_id=data.get("project_id"),
            endpoint=data.get("endpoint"),
            created_at=data.get("created_at"),
            warnings=list(data.get("warnings", ())),
        )
