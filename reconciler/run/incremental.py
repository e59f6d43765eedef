"""``watch`` cycles whose cost grows with the change, not the inventory.

After a full read of a target's project, each cycle lists the project by ``update_time``
descending down to the last cycle's watermark (:func:`reconciler.live.fetch.list_changed`) and
compares only what changed: the managed assets among those rows against their manifests; read
by id, the assets whose manifest changed, those not compared last time, and those declared with
an X-App-UserId; every other managed asset keeps its last comparison, and the unmanaged ones
their last row.  The result is
the same :class:`ProjectDrift` a full read gives, so the drift history, the metrics and
self-heal treat both alike.

The watermark is the newest ``update_time`` of a cycle's *first* answer, the service's own
clock at that moment: an edit made later (during the cycle, or after it) is stamped no earlier,
so the next cycle sees it.  The listing takes rows down to the watermark minus ``margin``
(equal timestamps, clocks of the service's nodes a little apart, a write stamped before it
became visible).

A full read runs for the first cycle, every ``resync`` seconds, when the target's ignore rules
changed, and whenever the listing cannot be trusted (:data:`FALLBACK_REASONS`).  Deletions show
only in full reads: a deleted asset leaves no row to list (the count dropping makes the cycle
fall back to a full read; a deletion and a creation in the same interval wait for the resync).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.api.client import MetaStudioClient
from reconciler.constants import READ_PARALLELISM
from reconciler.engine.diff import Desired
from reconciler.engine.drift import (
    AssetDrift,
    DriftReport,
    DriftStatus,
    ProjectDrift,
    UnmanagedAsset,
    project_drift,
)
from reconciler.engine.guardrails import Rules
from reconciler.engine.planner import desired_from_loaded, with_rules
from reconciler.errors import ReconcilerError
from reconciler.live.fetch import (
    ChangedListing,
    expected_error,
    failure,
    list_changed,
    raw_of,
    read_wanted,
    usable,
)
from reconciler.manifest.loader import LoadedManifest
from reconciler.run.drift import DriftReads, manifest_digests, unchecked
from reconciler.run.session import Session
from reconciler.run.targets import Run, TargetRun

DEFAULT_RESYNC = 3600.0
DEFAULT_MARGIN = 60.0
FULL, INCREMENTAL = "full", "incremental"
# Why a cycle read a whole project although it had a watermark.
FALLBACK_REASONS = ("order", "watermark", "count", "page-failed", "rules")
Place = tuple[str, str]


class ReadsStopped(ReconcilerError):
    """The watch is stopping: the cycle sends no further read."""


@dataclass(frozen=True)
class Released:
    """An asset to read by id whose manifest is gone (it may now be unmanaged)."""

    asset_id: str
    app_user_id: str | None = None


@dataclass
class Baseline:
    """What the watch knows of one target's project between cycles."""

    watermark: int | None  # ms; None when the service gave no usable update_time
    count: int  # the count of the last listing
    assets: dict[str, AssetDrift]  # the last comparison of each managed asset
    unmanaged: dict[str, UnmanagedAsset]
    present: set[str]  # the ids the project is known to hold
    digests: dict[str, str]  # manifest digests the comparisons were made with
    rules: Rules
    full_at: float  # monotonic time of the last full read
    # Why the next cycle cannot start from the watermark (the full read's first page was not
    # sorted, or failed): a reason of FALLBACK_REASONS and what was seen.
    untrusted: tuple[str, str] | None = None


@dataclass(frozen=True)
class TargetRead:
    """How a cycle read one target: ``kind`` full or incremental; for a full read, ``reason``
    (``first``, ``resync``, or one of :data:`FALLBACK_REASONS`) and ``detail``; ``compared``:
    the assets compared again."""

    target: str
    kind: str
    reason: str | None = None
    detail: str | None = None
    compared: int = 0


class Fallback(Exception):
    """The incremental read cannot be trusted: read the whole project."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class WatchReads:
    """The reads of a watcher's cycles: a baseline per target, kept between cycles."""

    resync: float = DEFAULT_RESYNC
    margin: float = DEFAULT_MARGIN
    baselines: dict[tuple[str, Place], Baseline] = field(default_factory=dict)
    # Per manifest object (the watch keeps them while their files are unchanged): what it
    # declares and its digest, worked out once instead of every cycle.
    _known: dict[int, tuple[LoadedManifest, Desired, str]] = field(default_factory=dict)
    _kept: dict[int, tuple[LoadedManifest, Desired, str]] = field(default_factory=dict)

    def declared(self, loaded: Sequence[LoadedManifest]) -> tuple[list[Desired], dict[str, str]]:
        """What ``loaded`` declares, and the digest of each asset's manifest (see
        :func:`reconciler.run.manifest_digests`), from the cache where the object is known."""
        desired: list[Desired] = []
        digests: dict[str, str] = {}
        for item in loaded:
            known = self._known.get(id(item)) or self._kept.get(id(item))
            if known is None or known[0] is not item:
                asset_id = item.manifest.metadata.asset_id
                known = (item, desired_from_loaded(item), manifest_digests([item])[asset_id])
            self._kept[id(item)] = known
            desired.append(known[1])
            digests[known[1].asset_id] = known[2]
        return desired, digests

    async def cycle(
        self,
        run: Run,
        *,
        parallelism: int = READ_PARALLELISM,
        cancel: asyncio.Event | None = None,
    ) -> tuple[DriftReport, list[TargetRead]]:
        """The drift of every target of ``run`` (as a full drift would give it), and how
        each was read."""
        reads: dict[str, TargetRead] = {}
        self._kept = {}
        projects = await asyncio.gather(
            *(self._target(run, t, parallelism, cancel, reads) for t in run.targets)
        )
        self._known = self._kept  # manifests no longer loaded are forgotten
        report = DriftReport(list(projects))
        return report, [reads[t.label] for t in run.targets if t.label in reads]

    async def _target(
        self,
        run: Run,
        target: TargetRun,
        parallelism: int,
        cancel: asyncio.Event | None,
        reads: dict[str, TargetRead],
    ) -> ProjectDrift:
        def failed(error: str, project_id: str | None, endpoint: str | None) -> ProjectDrift:
            return unchecked(target.label, project_id, endpoint, error, len(target.manifests))

        async def work(session: Session) -> ProjectDrift:
            async with session.client(parallelism) as client:
                project, read = await self._read(session, target, client, parallelism, cancel)
            reads[target.label] = read
            return project

        return await run.each(target, work, failed)

    async def _read(
        self,
        session: Session,
        target: TargetRun,
        client: MetaStudioClient,
        parallelism: int,
        cancel: asyncio.Event | None,
    ) -> tuple[ProjectDrift, TargetRead]:
        key = (target.label, session.place)
        base = self.baselines.get(key)
        desired, digests = self.declared(target.manifests)
        rules = Rules(session.config.ignore_rules(session.target.name))
        reason, detail = _why_full(base, rules, self.resync)
        if reason is None and base is not None:
            try:
                project, compared = await self._incremental(
                    session, client, parallelism, base, desired, digests, rules
                )
                return project, TargetRead(target.label, INCREMENTAL, compared=compared)
            except Fallback as fallback:
                reason, detail = fallback.reason, fallback.detail
        self.baselines.pop(key, None)  # a full read that fails leaves no baseline to trust
        project, base = await self._full(
            session, client, parallelism, desired, digests, rules, cancel
        )
        if base is not None:
            self.baselines[key] = base
        return project, TargetRead(target.label, FULL, reason, detail, len(project.assets))

    async def _full(
        self,
        session: Session,
        client: MetaStudioClient,
        parallelism: int,
        desired: list[Desired],
        digests: dict[str, str],
        rules: Rules,
        cancel: asyncio.Event | None,
    ) -> tuple[ProjectDrift, Baseline | None]:
        """The whole project, after one page newest first (the watermark and count: an edit
        made after that page was answered is seen by the next cycle)."""
        started = time.monotonic()
        try:
            first = await list_changed(client, None, 0)
        except (ReconcilerError, ExceptionGroup) as exc:
            error = expected_error(exc)  # refused credentials end the cycle
            first = ChangedListing(problem=("page-failed", f"a page failed: {error}"))
        if cancel is not None and cancel.is_set():
            raise ReadsStopped("stopping: the project was not read")
        reads = DriftReads(client, parallelism)
        reads.add(desired)
        project = await reads.finish(session)
        if project.error is not None:
            return project, None
        present = {a.asset_id for a in project.assets if _present(a)}
        present.update(u.asset_id for u in project.unmanaged)
        return project, Baseline(
            watermark=first.newest if first.newest is not None else 0,  # 0: an empty project
            count=first.count,
            assets={a.asset_id: a for a in project.assets},
            unmanaged={u.asset_id: u for u in project.unmanaged},
            present=present,
            digests=digests,
            rules=rules,
            full_at=started,
            untrusted=first.problem,
        )

    async def _incremental(
        self,
        session: Session,
        client: MetaStudioClient,
        parallelism: int,
        base: Baseline,
        desired: list[Desired],
        digests: dict[str, str],
        rules: Rules,
    ) -> tuple[ProjectDrift, int]:
        """The changed rows since the watermark, the changed manifests by id; the rest carried."""
        margin = round(self.margin * 1000)
        try:
            listing = await list_changed(client, base.watermark, margin)
        except (ReconcilerError, ExceptionGroup) as exc:
            raise Fallback("page-failed", f"a page failed: {expected_error(exc)}") from None
        if listing.problem is not None:
            raise Fallback(*listing.problem)
        new = [asset_id for asset_id in listing.rows if asset_id not in base.present]
        if listing.count != base.count + len(new):
            raise Fallback(
                "count",
                f"the count went from {base.count} to {listing.count} with {len(new)} new "
                "asset(s) listed (an asset was deleted, or the count is off)",
            )
        managed = {d.asset_id: d for d in desired}
        # Compared again: the managed assets listed, those whose manifest is new or changed,
        # those that could not be compared last time, and those created under an X-App-UserId
        # (a listing without that header may not show them: they are read by id, with it).
        again = {asset_id for asset_id in listing.rows if asset_id in managed}
        again.update(
            d.asset_id
            for d in desired
            if base.digests.get(d.asset_id) != digests.get(d.asset_id)
            or d.asset_id not in base.assets
            or base.assets[d.asset_id].status is DriftStatus.ERROR
            or d.app_user_id is not None
        )
        released = [
            asset_id
            for asset_id in base.digests
            if asset_id not in managed and asset_id not in listing.rows
        ]
        errors: dict[str, ReconcilerError] = {}
        rows = usable({i: listing.rows[i] for i in again if i in listing.rows}, errors)
        by_id = [managed[i] for i in again if i not in listing.rows]
        wanted: list[Desired | Released] = [*by_id, *(Released(i) for i in released)]
        read = await read_wanted(wanted, client, parallelism)
        failed = {i: f for i, f in read.failed.items() if i in managed}
        failed.update((i, failure(e)) for i, e in errors.items())
        rows.update((i, r) for i, r in read.rows.items() if i in managed)
        subset = [d for d in desired if d.asset_id in again]
        ignore = with_rules(subset, rules)
        target = session.target
        fresh = project_drift(
            ignore,
            list(rows.values()),
            target=target.name,
            project_id=target.project_id,
            endpoint=target.endpoint,
            failed=failed,
            missing={i: m for i, m in read.missing.items() if i in managed},
        )
        assets = dict(base.assets)
        assets.update((a.asset_id, a) for a in fresh.assets)
        present = set(base.present) | set(listing.rows)
        unmanaged = dict(base.unmanaged)
        for asset_id, row in listing.rows.items():
            if asset_id not in managed:
                unmanaged[asset_id] = _unmanaged(asset_id, raw_of(row))
        for asset_id in released:
            if asset_id in read.rows:
                unmanaged[asset_id] = _unmanaged(asset_id, read.rows[asset_id])
                present.add(asset_id)
            elif asset_id in read.missing:
                present.discard(asset_id)
        for asset in fresh.assets:
            if _present(asset):
                present.add(asset.asset_id)
            elif asset.status is DriftStatus.MISSING:
                present.discard(asset.asset_id)
        for asset_id in managed:
            unmanaged.pop(asset_id, None)
        project = ProjectDrift(
            target=target.name,
            project_id=target.project_id,
            endpoint=target.endpoint,
            assets=[assets[d.asset_id] for d in desired],
            unmanaged=sorted(
                unmanaged.values(), key=lambda u: ((u.name or "").lower(), u.asset_id)
            ),
            total=len(present),
            managed=len(managed.keys() & present),
        )
        base.watermark = listing.newest if listing.newest is not None else base.watermark
        base.count = listing.count
        base.assets = {a.asset_id: a for a in project.assets}
        base.unmanaged = unmanaged
        base.present = present
        base.digests = digests
        return project, len(again) + len(set(listing.rows) - again)


def _why_full(base: Baseline | None, rules: Rules, resync: float) -> tuple[str | None, str | None]:
    """Why this cycle must read the whole project, if it must."""
    if base is None:
        return "first", None
    if time.monotonic() - base.full_at >= resync:
        return "resync", None
    if base.rules != rules:
        return "rules", "the target's ignore rules changed"
    if base.untrusted is not None:
        return base.untrusted
    if base.watermark is None:
        return "watermark", "the last read gave no update_time to start from"
    return None, None


def _present(asset: AssetDrift) -> bool:
    """The comparison had a live row (a missing asset has none, a failed read none known)."""
    return asset.status not in (DriftStatus.MISSING, DriftStatus.ERROR) or bool(asset.live_state)


def _unmanaged(asset_id: str, row: dict[str, Any]) -> UnmanagedAsset:
    return UnmanagedAsset(
        asset_id=asset_id,
        name=row.get("asset_name"),
        asset_type=row.get("asset_type"),
        asset_state=row.get("asset_state"),
    )
