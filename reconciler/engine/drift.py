"""Drift: what changed in MetaStudio outside git.

Drift is the plan read the other way round: the same per-asset comparison
(:func:`reconciler.engine.diff.diff_asset`), reported as "the manifest says X, live is Y" rather
than "will change Y to X".  Added on top: the assets of the project that no manifest manages,
and coverage.  Write-only fields cannot be read back, so they are listed as unchecked, never as
drifted nor as in sync.

The JSON form (:meth:`DriftReport.to_json`) is documented in docs/drift.md and versioned by
``FORMAT_VERSION``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine import policy
from reconciler.engine.diff import NOT_FOUND_CODE, Desired, diff_asset
from reconciler.engine.history import Episode
from reconciler.engine.plan import Action, AssetPlan, ChangeKind, FieldChange
from reconciler.engine.planner import ReadFailure, read_error
from reconciler.times import now_rfc3339

# 1.1: per-project "error" (a target that could not be read); per-asset "drifted_since" and
# "drift_cycles" (the drift history)
FORMAT_VERSION = "1.1"

EXIT_IN_SYNC = 0
EXIT_ERROR = 1
EXIT_DRIFT = 2


class DriftStatus(enum.StrEnum):
    IN_SYNC = "in-sync"  # every checkable managed field matches
    DRIFTED = "drifted"  # at least one managed field differs from its manifest
    MISSING = "missing"  # the service answered "not found" for the asset the manifest names
    BLOCKED = "blocked"  # the asset is in a state that does not allow updates
    ERROR = "error"  # the manifest cannot be compared (e.g. a block not of the asset's type)


# Statuses that mean "live differs from git" (exit code 2).
DRIFT_STATUSES = frozenset({DriftStatus.DRIFTED, DriftStatus.MISSING, DriftStatus.BLOCKED})


@dataclass(frozen=True)
class FieldDrift:
    """One managed field whose live value is not what the manifest declares."""

    path: str
    manifest: Any
    live: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "manifest": self.manifest, "live": self.live}


@dataclass
class AssetDrift:
    asset_id: str
    status: DriftStatus
    name: str | None = None
    asset_type: str | None = None
    source: str | None = None
    live_state: str | None = None
    fields: list[FieldDrift] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # managed write-only fields
    in_sync_fields: int = 0
    errors: list[str] = field(default_factory=list)
    history: Episode | None = None  # the open drift episode, where the history knows it

    @property
    def drifted_since(self) -> str | None:
        return self.history.first_seen if self.history else None

    def to_json(self) -> dict[str, Any]:
        return {
            "asset_id": self.asset_id,
            "name": self.name,
            "asset_type": self.asset_type,
            "status": self.status.value,
            "source": self.source,
            "live_state": self.live_state,
            "fields": [f.to_json() for f in self.fields],
            "unchecked_write_only": list(self.unchecked),
            "in_sync_fields": self.in_sync_fields,
            "errors": list(self.errors),
            "drifted_since": self.drifted_since,
            "drift_cycles": self.history.cycles if self.history else None,
        }


@dataclass(frozen=True)
class UnmanagedAsset:
    """An asset of the project that no manifest names."""

    asset_id: str
    name: str | None
    asset_type: str | None
    asset_state: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "asset_id": self.asset_id,
            "name": self.name,
            "asset_type": self.asset_type,
            "asset_state": self.asset_state,
        }


@dataclass
class ProjectDrift:
    """The drift of one target (one MetaStudio project)."""

    target: str | None
    project_id: str | None
    endpoint: str | None
    assets: list[AssetDrift]
    unmanaged: list[UnmanagedAsset]
    total: int  # assets in the project, managed or not
    managed: int  # assets in the project that a manifest names
    error: str | None = None  # the whole target could not be read; assets and counts are empty
    unchecked_manifests: int = 0  # with ``error``: the manifests that could not be compared

    def count(self, status: DriftStatus) -> int:
        return sum(1 for a in self.assets if a.status is status)

    def add_history(self, episodes: Mapping[str, Episode]) -> None:
        """Attach each differing asset's open drift episode (see engine.history)."""
        for asset in self.assets:
            if asset.status in DRIFT_STATUSES:
                asset.history = episodes.get(asset.asset_id)

    @property
    def coverage(self) -> float | None:
        """Managed / total, or None for an empty project."""
        return self.managed / self.total if self.total else None

    def to_json(self, include_unmanaged: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "target": self.target,
            "project_id": self.project_id,
            "endpoint": self.endpoint,
            "error": self.error,
            "summary": {
                **{status.value: self.count(status) for status in DriftStatus},
                "unmanaged": len(self.unmanaged),
                "managed": self.managed,
                "total": self.total,
                "coverage": self.coverage,
            },
            "assets": [a.to_json() for a in self.assets],
        }
        if include_unmanaged:
            data["unmanaged"] = [u.to_json() for u in self.unmanaged]
        return data


@dataclass
class DriftReport:
    projects: list[ProjectDrift]
    generated_at: str = field(default_factory=lambda: now_rfc3339())
    include_unmanaged: bool = False

    def count(self, status: DriftStatus) -> int:
        return sum(p.count(status) for p in self.projects)

    @property
    def unmanaged(self) -> int:
        return sum(len(p.unmanaged) for p in self.projects)

    @property
    def managed(self) -> int:
        return sum(p.managed for p in self.projects)

    @property
    def total(self) -> int:
        return sum(p.total for p in self.projects)

    @property
    def has_drift(self) -> bool:
        return any(self.count(s) for s in DRIFT_STATUSES)

    @property
    def failed(self) -> list[ProjectDrift]:
        """The targets that could not be read at all."""
        return [p for p in self.projects if p.error is not None]

    @property
    def exit_code(self) -> int:
        """1 when some asset or target could not be checked, else 2 on drift, else 0."""
        if self.count(DriftStatus.ERROR) or self.failed:
            return EXIT_ERROR
        return EXIT_DRIFT if self.has_drift else EXIT_IN_SYNC

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "generated_at": self.generated_at,
            "in_sync": not self.has_drift and self.exit_code == EXIT_IN_SYNC,
            "summary": {
                **{status.value: self.count(status) for status in DriftStatus},
                "unmanaged": self.unmanaged,
                "managed": self.managed,
                "total": self.total,
                "coverage": self.managed / self.total if self.total else None,
                "failed_targets": len(self.failed),
            },
            "projects": [p.to_json(self.include_unmanaged) for p in self.projects],
        }


def field_drifts(changes: Iterable[FieldChange]) -> list[FieldDrift]:
    """Readable changes as leaves: nested blocks and system_properties by their changed keys."""
    out: list[FieldDrift] = []
    for change in changes:
        if change.kind is ChangeKind.WRITE_ONLY:
            continue
        if change.children:
            out.extend(field_drifts(change.children))
        else:
            out.append(FieldDrift(change.dotted, manifest=change.after, live=change.before))
    return out


def asset_drift(plan: AssetPlan, write_only: Sequence[str]) -> AssetDrift:
    """Read one asset's plan as drift."""
    fields = field_drifts(plan.changes)
    if plan.action is Action.ERROR:
        status = DriftStatus.MISSING if plan.error_code == NOT_FOUND_CODE else DriftStatus.ERROR
    elif plan.action is Action.BLOCKED:
        status = DriftStatus.BLOCKED
    else:
        status = DriftStatus.DRIFTED if fields else DriftStatus.IN_SYNC
    return AssetDrift(
        asset_id=plan.asset_id,
        status=status,
        name=plan.name,
        asset_type=plan.asset_type,
        source=plan.source,
        live_state=plan.live_state,
        fields=fields,
        unchecked=list(write_only) if status is not DriftStatus.MISSING else [],
        in_sync_fields=plan.unchanged,
        errors=list(plan.errors),
    )


def missing_text(asset_id: str, project_id: str | None, answer: ReadFailure | None) -> str:
    """Why a managed asset is missing, in the service's words: a row names no error code that
    the service did not send."""
    where = f" in project {project_id}" if project_id else ""
    said = (
        answer.message
        if answer is not None
        else "no page of the project and no read by its id returned it"
    )
    return f"asset {asset_id} does not exist{where}: {said}"


def project_drift(
    desired: Sequence[Desired],
    live: Sequence[Mapping[str, Any]],
    *,
    target: str | None = None,
    project_id: str | None = None,
    endpoint: str | None = None,
    failed: Mapping[str, ReadFailure] | None = None,
    missing: Mapping[str, ReadFailure] | None = None,
) -> ProjectDrift:
    """Compare the manifests of one target with every asset of its project (raw API JSON);
    an asset in ``failed`` (its live state was unusable) is reported as an error.

    A managed asset absent from ``live`` is missing; ``missing`` holds, per asset, the
    service's own "not found" answer, which its row quotes (the reader asks by id for every
    managed asset no page held, so only the service's word makes one missing).
    """
    by_id = {str(item["asset_id"]): item for item in live if item.get("asset_id")}
    failed = failed or {}
    missing = missing or {}
    assets: list[AssetDrift] = []
    for want in desired:
        row = by_id.get(want.asset_id)
        if want.asset_id in failed:
            plan = read_error(want, failed[want.asset_id])
        else:
            # No write-only record on purpose: drift must not claim write-only fields are in sync.
            plan = diff_asset(want, row, project_id=project_id)
        write_only = [key for key in want.desired if key in policy.WRITE_ONLY]
        drift = asset_drift(plan, write_only)
        if drift.status is DriftStatus.MISSING and row is None and want.asset_id not in failed:
            drift.errors = [missing_text(want.asset_id, project_id, missing.get(want.asset_id))]
        assets.append(drift)
    managed_ids = {want.asset_id for want in desired}
    unmanaged = [
        UnmanagedAsset(
            asset_id=asset_id,
            name=item.get("asset_name"),
            asset_type=item.get("asset_type"),
            asset_state=item.get("asset_state"),
        )
        for asset_id, item in by_id.items()
        if asset_id not in managed_ids
    ]
    unmanaged.sort(key=lambda u: ((u.name or "").lower(), u.asset_id))
    return ProjectDrift(
        target=target,
        project_id=project_id,
        endpoint=endpoint,
        assets=assets,
        unmanaged=unmanaged,
        total=len(by_id),
        managed=len(managed_ids & by_id.keys()),
    )
