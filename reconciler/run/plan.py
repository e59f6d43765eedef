"""``plan``: every target's plan, made while the manifests load.

Each target's plan carries that target's safety threshold and, when ``--asset``/``--selector``
narrowed the run, its targeting (:class:`~reconciler.engine.plan.Plan`): whoever shows or
applies the plan reads them from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from reconciler.api.client import MetaStudioClient
from reconciler.api.config import ReconcilerConfig, config_path, load_config
from reconciler.constants import READ_PARALLELISM
from reconciler.engine.diff import Desired
from reconciler.engine.guardrails import Rules
from reconciler.engine.plan import ChangedSince, Plan, PlanSet, Targeting, Unmanaged
from reconciler.engine.planner import with_rules
from reconciler.errors import ReconcilerError
from reconciler.live.plan import PlanRun
from reconciler.manifest.gitrev import Changes, changed_documents
from reconciler.options import GlobalOptions
from reconciler.run.locks import StreamedLocks
from reconciler.run.selection import Filters
from reconciler.run.session import Session, StageCounter, open_config_store
from reconciler.run.streamed import Lane, Streamed, TargetResult
from reconciler.state import WriteOnlyRecords
from reconciler.times import now_rfc3339


async def make_plan(
    options: GlobalOptions,
    paths: Sequence[str],
    filters: Filters | None = None,
    *,
    parallelism: int = READ_PARALLELISM,
    progress: Callable[[str], None] | None = None,
    counter: StageCounter | None = None,
    max_change_percent: float | None = None,
    changed_since: str | None = None,
) -> PlanSet:
    """Plan the manifests under ``paths`` against every target of the run, concurrently,
    reading live state while the manifests load (:class:`~reconciler.run.streamed.Streamed`).
    With ``changed_since`` (a git revision) only the documents changed since it are loaded,
    planned and read, by id (:mod:`reconciler.manifest.gitrev`).

    A target that cannot be planned (unreachable, credentials rejected) is reported in its own
    plan (``Plan.error``) when the run covers several; a one-target run raises, as a setup
    error.  ``counter`` gets ``("reading live assets", done, total)`` over all targets as live
    state arrives, from the end of the load on (when the total is known).
    """
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    planned = await streamed_plan(
        options,
        load_config(config_path(options)),
        paths,
        filters or Filters(),
        max_change_percent,
        parallelism=parallelism,
        progress=progress,
        counter=counter,
        changed_since=changed_since,
    )
    return planned.plans


class Planned:
    """Every target's plan, each with its session (None for a target that could not be
    opened), in target order."""

    def __init__(self, results: Sequence[TargetResult[Plan]], created_at: str) -> None:
        self.pairs = list(results)
        self.plans = PlanSet([pair.result for pair in self.pairs], created_at=created_at)

    def opened(self) -> list[tuple[Plan, Session]]:
        """The plans whose session opened, with it."""
        return [(pair.result, pair.session) for pair in self.pairs if pair.session is not None]


async def streamed_plan(
    options: GlobalOptions,
    config: ReconcilerConfig,
    paths: Sequence[str],
    filters: Filters,
    max_change_percent: float | None,
    *,
    parallelism: int,
    progress: Callable[[str], None] | None,
    counter: StageCounter | None,
    locks: StreamedLocks | None = None,
    changed_since: str | None = None,
) -> Planned:
    """Every target's plan (:class:`Streamed` with :class:`PlanKind`) with its session; with
    ``changed_since``, of the documents changed since that git revision only."""
    changes = changed_documents(paths, changed_since) if changed_since is not None else None
    with open_config_store(config) as store:
        kind = PlanKind(store.records, filters, max_change_percent, counter, progress, changes)
        streamed = Streamed(
            kind,
            options,
            config,
            changes.files if changes is not None else paths,
            filters,
            parallelism,
            progress=progress,
            locks=locks,
            changes=changes,
        )
        kind.owner_of = streamed.selection.owner_of
        return Planned(await streamed.run(), streamed.created_at)


def target_rules(session: Session) -> Rules:
    """The target's ignore and policy rules (reconciler.yaml's, then the target's own)."""
    name = session.target.name
    config = session.config
    return Rules(config.ignore_rules(name), config.policy_rules(name), name)


class _PlanReads:
    """A target's plan reads (:class:`PlanRun`) as a streamed run drives them, each desired
    asset under the target's ignore and policy rules."""

    def __init__(self, run: PlanRun, rules: Rules | None = None) -> None:
        self.run = run
        self.rules = rules or Rules()

    def start(self, expected: int, *, exact: bool = False) -> None:
        self.run.start(expected, exact=exact)

    def add(self, desired: Sequence[Desired]) -> None:
        self.run.add(with_rules(desired, self.rules))

    async def cancel(self) -> None:
        await self.run.cancel()

    async def finish(self, session: Session) -> Plan:
        target = session.target
        return await self.run.finish(target_name=target.name, endpoint=target.endpoint)


class PlanKind:
    """A streamed plan: each target's plan with its threshold and targeting, and the live
    progress counter over every target (shown once the load has given its total)."""

    def __init__(
        self,
        records: WriteOnlyRecords,
        filters: Filters,
        max_change_percent: float | None,
        counter: StageCounter | None,
        progress: Callable[[str], None] | None,
        changes: Changes | None = None,
    ) -> None:
        self.changes = changes
        # Which target a document naming ``target`` belongs to (the run's selection's rule).
        self.owner_of: Callable[[str | None], str | None] = lambda target: target
        self.records = records
        self.filters = filters
        self.max_change_percent = max_change_percent
        self.counter = counter
        self.say = progress or (lambda _message: None)
        self._done: dict[str | None, int] = {}
        self._total: int | None = None

    def reads(self, lane: Lane[Any], client: MetaStudioClient, parallelism: int) -> _PlanReads:
        name = lane.name
        self._done[name] = 0

        def arrived(count: int, _of: int) -> None:
            self._done[name] = count
            self._count()

        assert lane.session is not None
        return _PlanReads(
            PlanRun(
                client,
                state=self.records,
                project_id=lane.session.target.project_id,
                parallelism=parallelism,
                on_progress=arrived if self.counter is not None else None,
            ),
            target_rules(lane.session),
        )

    def _count(self) -> None:
        if self.counter is not None and self._total is not None:
            self.counter("reading live assets", sum(self._done.values()), self._total)

    def loaded(self, lanes: Sequence[Lane[Any]]) -> None:
        self._total = sum(len(lane.desired) for lane in lanes)
        if any(self._done.values()):
            self._count()

    def done(self, lane: Lane[Any], result: Plan) -> Plan:
        assert lane.session is not None
        result.safety = lane.session.safety(self.max_change_percent)
        if self.filters:
            result.targeting = Targeting(len(lane.desired), lane.declared, self.filters.flags)
        if self.changes is not None:
            result.changed_since = changed_since(self.changes, lane, self.owner_of)
        elapsed = time.monotonic() - lane.started
        self.say(f"{lane.prefix}Planned {len(result.assets)} assets in {elapsed:.1f}s.")
        return result

    def failed(self, lane: Lane[Any], error: str) -> Plan:
        project_id, endpoint = lane.place
        return Plan(
            [],
            target=lane.label,
            project_id=project_id,
            endpoint=endpoint,
            created_at=now_rfc3339(),
            error=error,
            unplanned=len(lane.desired),
        )


def changed_since(
    changes: Changes, lane: Lane[Any], owner_of: Callable[[str | None], str | None]
) -> ChangedSince:
    """The lane's part of a ``--changed-since`` run: its managed assets (every manifest
    counted), how many documents it plans, and its documents removed since the revision."""
    removed = tuple(
        Unmanaged(document.asset_id, document.file)
        for document in changes.removed
        if owner_of(document.target) == lane.name
    )
    managed = changes.managed(owner_of).get(lane.name, 0)
    return ChangedSince(changes.ref, managed, len(lane.desired), removed)
