"""``apply``: from manifests (plan under the locks, show, check, confirm, send) or from a saved
plan (check it is the same target, under its threshold and not stale, then send).

Refusals leave as data (the engine's ``ThresholdCrossed``, ``PolicyViolated`` and ``PlanStale``
on :class:`ApplyRefused`); the command line words them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reconciler import interrupts
from reconciler.api.client import MetaStudioClient
from reconciler.api.config import Target, config_path, load_config
from reconciler.constants import WRITE_PARALLELISM
from reconciler.engine.apply import (
    ApplyResult,
    AssetResult,
    PlanStale,
    ReadCounts,
    StaleAsset,
    stale_records,
)
from reconciler.engine.diff import record_text
from reconciler.engine.fingerprint import live_fingerprint
from reconciler.engine.guardrails import PolicyViolated, refused
from reconciler.engine.plan import Action, Plan, PlanSet
from reconciler.engine.safety import ThresholdCrossed
from reconciler.errors import ReconcilerError
from reconciler.live.apply import apply_plan, find_stale
from reconciler.options import GlobalOptions
from reconciler.run import planfile
from reconciler.run.locks import Guard, StreamedLocks, all_locked
from reconciler.run.plan import streamed_plan
from reconciler.run.selection import Filters, Selection
from reconciler.run.session import Session, StageCounter, open_config_store, open_target
from reconciler.state import LockHolder, WriteOnlyRecords

Refusal = ThresholdCrossed | PlanStale | PolicyViolated


class ApplyRefused(ReconcilerError):
    """Apply will not send anything: stale plan, other target, threshold, no confirmation.
    ``reason`` holds the data of a refusal the command line words itself."""

    def __init__(self, message: str, reason: Refusal | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class ApplyAborted(ReconcilerError):
    """A second interrupt abandoned the requests in flight; their outcome is unknown."""

    exit_code = 130


def _ignore(*_args: Any) -> None:
    return None


def _approve(_plan: PlanSet) -> bool:
    return True


@dataclass
class ApplyHooks:
    """What the CLI shows or asks while an apply runs; every hook defaults to silence.

    ``on_plan`` gets the plan (every target's) before anything is decided (apply from manifests
    shows it), ``confirm`` is asked before sending (False cancels; it may raise
    :class:`ApplyRefused`), ``on_forced`` gets the thresholds crossed when ``force`` was given,
    ``on_start`` the number of changes and the parallelism, ``on_result`` each asset's result
    as it finishes (``AssetResult.target`` names its target when the run has several),
    ``on_interrupt`` the first stop (Ctrl-C, SIGTERM or the ``--timeout`` deadline) and
    ``on_lock_wait`` the holder of a project's write lock and the timeout, when apply starts
    waiting for it.
    """

    progress: Callable[[str], None] | None = None
    on_count: StageCounter | None = None  # ("reading live assets", done, total) while planning
    on_plan: Callable[[PlanSet], None] = _ignore
    confirm: Callable[[PlanSet], bool] = _approve
    on_forced: Callable[[ThresholdCrossed], None] = _ignore
    on_start: Callable[[int, int], None] = _ignore
    on_result: Callable[[AssetResult], None] = _ignore
    on_interrupt: Callable[[interrupts.Stopped], None] = _ignore
    on_lock_wait: Callable[[LockHolder, float], None] = _ignore


@dataclass
class ApplyRun:
    """One apply: the plan it applied, and the result (None when nothing was sent).

    ``result`` holds every target's asset results (in plan order, target after target);
    ``results`` the same per target name, for per-target summaries.
    """

    plan: PlanSet
    result: ApplyResult | None = None
    cancelled: bool = False  # the confirmation was declined
    saved: Path | None = None  # the plan file, when a saved plan was applied
    results: dict[str, ApplyResult] = field(default_factory=dict)
    # Policy rules that --allow-policy let through: rule name -> the asset ids it refused.
    allowed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """The apply's exit code: its result's, 1 when declined, or the plan's errors."""
        if self.result is not None:
            return self.result.exit_code
        if self.cancelled:
            return 1
        failed = self.plan.by_action(Action.ERROR) + self.plan.by_action(Action.BLOCKED)
        return 1 if failed or self.plan.failed else 0


def _check_threshold(plans: PlanSet, force: bool, hooks: ApplyHooks, *, shown: bool) -> None:
    """The safety threshold, per target: each target's share of its own managed assets, under
    the target's own settings (carried by its plan)."""
    crossed = [(plan.target, c) for plan in plans.plans if (c := plan.crossing) is not None]
    if not crossed:
        return
    reason = ThresholdCrossed(crossed, several=len(plans.plans) > 1, shown=shown)
    if not force:
        raise ApplyRefused("the plan is above the safety threshold; nothing was sent", reason)
    if not shown:
        hooks.on_forced(reason)


def _check_policies(plans: PlanSet, allowed: Sequence[str]) -> dict[str, list[str]]:
    """Policy rules (docs/policies.md): a change a rule refuses is sent only when
    ``--allow-policy`` names every rule that refuses it; returns what was let through, per rule."""
    violated = plans.violated
    if not violated:
        return {}
    stopped = refused(violated, allowed)
    if stopped:
        reason = PolicyViolated(stopped, several=len(plans.plans) > 1)
        raise ApplyRefused("policy rules refuse changes in the plan; nothing was sent", reason)
    through: dict[str, list[str]] = {}
    for _target, asset in violated:
        for violation in asset.violations:
            through.setdefault(violation.rule, []).append(asset.asset_id)
    return through


def _check_planned(plans: PlanSet) -> None:
    """Apply never starts while a target could not be planned: its state is unknown."""
    if plans.failed:
        lines = [f"  target {plan.target}: {plan.error}" for plan in plans.failed]
        raise ApplyRefused(
            "\n".join(
                [
                    f"{len(plans.failed)} target(s) could not be planned; nothing was sent "
                    "to any target.",
                    *lines,
                ]
            )
        )


def _check_same_target(plan: Plan, target: Target, path: Path) -> None:
    made = (plan.project_id, plan.endpoint.rstrip("/") if plan.endpoint else None)
    now = (target.project_id, target.endpoint.rstrip("/"))
    if plan.target is not None and target.name != plan.target:
        raise ApplyRefused(
            f"{path} was made for target {plan.target}, but this run's target is {target.name} "
            f"(project {target.project_id} at {target.endpoint}); nothing was sent. Pass "
            f"--target {plan.target}."
        )
    if made != now:
        raise ApplyRefused(
            f"{path} was made for project {plan.project_id} at {plan.endpoint} "
            f"(target {plan.target}), but this run resolves to project {target.project_id} "
            f"at {target.endpoint} (target {target.name}); nothing was sent. Pass the same "
            "--target/--project-id/--endpoint as when the plan was made."
        )


def apply_manifests(
    options: GlobalOptions,
    paths: Sequence[str],
    *,
    parallelism: int = WRITE_PARALLELISM,
    force: bool = False,
    hooks: ApplyHooks | None = None,
    lock_timeout: float = 0.0,
    filters: Filters | None = None,
    max_change_percent: float | None = None,
    allow_policies: Sequence[str] = (),
    changed_since: str | None = None,
) -> ApplyRun:
    """Under each target's write lock: plan every target's manifests (those ``filters``
    select, or with ``changed_since`` those changed since that git revision) with the
    streamed plan (reads overlap the load; nothing is written before the whole load is
    valid), show the plan, check each target's threshold, confirm, then send to every target
    at once (each write right after a fresh read of its asset)."""
    hooks = hooks or ApplyHooks()
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    config = load_config(config_path(options))
    with contextlib.ExitStack() as held:
        locks = StreamedLocks(held, lock_timeout, hooks.on_lock_wait)
        planned = interrupts.run(
            streamed_plan(
                options,
                config,
                paths,
                filters or Filters(),
                max_change_percent,
                parallelism=parallelism,
                progress=hooks.progress,
                counter=hooks.on_count,
                locks=locks,
                changed_since=changed_since,
            )
        )
        plans = planned.plans
        hooks.on_plan(plans)
        _check_planned(plans)
        if not plans.by_action(Action.UPDATE):
            return ApplyRun(plans)
        allowed = _check_policies(plans, allow_policies)
        _check_threshold(plans, force, hooks, shown=True)
        if not hooks.confirm(plans):
            return ApplyRun(plans, cancelled=True, allowed=allowed)
        sessions = [session for _plan, session in planned.opened()]
        guards = [locks.guards[session.place] for session in sessions]

        async def work(cancel: asyncio.Event, records: WriteOnlyRecords) -> dict[str, ApplyResult]:
            async with AsyncExitStack() as stack:
                clients = [await stack.enter_async_context(s.client(parallelism)) for s in sessions]
                return await send_all(plans, clients, records, parallelism, cancel, hooks, guards)

        done = _finished(plans, _send_interruptible(sessions[0], work, hooks))
        done.allowed = allowed
        return done


def apply_saved(
    options: GlobalOptions,
    path: Path,
    *,
    parallelism: int = WRITE_PARALLELISM,
    force: bool = False,
    hooks: ApplyHooks | None = None,
    lock_timeout: float = 0.0,
    max_change_percent: float | None = None,
    allow_policies: Sequence[str] = (),
) -> ApplyRun:
    """Apply a saved plan file under each target's write lock: every target planned, each the
    same target and project as now, under its threshold, and none stale (each target checked
    against its own live state and its write-only records)."""
    hooks = hooks or ApplyHooks()
    plans = _narrowed(planfile.read_plan(path).plan, options.targets, path)
    _check_planned(plans)
    config = load_config(config_path(options))
    Selection(options, config, Filters()).check_targets(
        [str(plan.target) for plan in plans.plans], covers=f"{path} covers"
    )
    sessions = []
    for plan in plans.plans:
        session = open_target(
            options, config, plan.target if plan.target in config.targets else None
        )
        _check_same_target(plan, session.target, path)
        plan.safety = session.safety(max_change_percent)
        sessions.append(session)
    allowed = _check_policies(plans, allow_policies)
    _check_threshold(plans, force, hooks, shown=False)

    async def work(cancel: asyncio.Event, records: WriteOnlyRecords) -> dict[str, ApplyResult]:
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(s.client(parallelism)) for s in sessions]
            moved = await asyncio.gather(
                *(
                    find_stale(p, c, live_fingerprint)
                    for p, c in zip(plans.plans, clients, strict=True)
                )
            )
            stale = [
                (plan.target, _with_records(plan, found, records))
                for plan, found in zip(plans.plans, moved, strict=True)
            ]
            if any(items for _target, items in stale):
                reason = PlanStale([s for s in stale if s[1]], several=len(plans.plans) > 1)
                raise ApplyRefused("the saved plan is stale; nothing was sent", reason)
            guards = [held[session.place] for session in sessions]
            return await send_all(plans, clients, records, parallelism, cancel, hooks, guards)

    with all_locked(sessions, lock_timeout, hooks.on_lock_wait) as held:
        done = _finished(plans, _send_interruptible(sessions[0], work, hooks))
    done.saved = path
    done.allowed = allowed
    return done


def _narrowed(plans: PlanSet, names: Sequence[str], path: Path) -> PlanSet:
    """The saved plan's targets that ``--target`` names (all of them without ``--target``)."""
    if not names:
        return plans
    have = [plan.target for plan in plans.plans]
    absent = [name for name in names if name not in have]
    if absent:
        raise ApplyRefused(
            f"{path} has no plan for target {', '.join(absent)} (it covers "
            f"{', '.join(str(t) for t in have)}); nothing was sent"
        )
    return PlanSet([p for p in plans.plans if p.target in names], created_at=plans.created_at)


def _with_records(
    plan: Plan, moved: Sequence[StaleAsset], records: WriteOnlyRecords
) -> list[StaleAsset]:
    """The stale assets of ``plan``: those whose write-only record changed since it was made
    (it would send older write-only values back), then those whose live state moved."""
    found = records.get_many(plan.project_id or "", [a.asset_id for a in plan.assets])
    stale = stale_records(plan, {k: record_text(v) for k, v in found.items()})
    # An asset in both lists was applied by this plan only if both its parts show it.
    live_part = {item.asset_id: item for item in moved}
    stale = [
        replace(item, applied=item.applied and live_part[item.asset_id].applied)
        if item.asset_id in live_part
        else item
        for item in stale
    ]
    listed = {item.asset_id for item in stale}
    return stale + [item for item in moved if item.asset_id not in listed]


def _finished(plans: PlanSet, results: dict[str, ApplyResult]) -> ApplyRun:
    stopped = next((result for result in results.values() if result.interrupted), None)
    merged = ApplyResult(
        [r for result in results.values() for r in result.results],
        interrupted=stopped is not None,
        interrupted_by=stopped.interrupted_by if stopped else None,
        interrupt_exit_code=stopped.interrupt_exit_code if stopped else 130,
        reads=ReadCounts.total(result.reads for result in results.values()),
        halted="; ".join(
            f"target {name}: {r.halted}" if len(results) > 1 else r.halted
            for name, r in results.items()
            if r.halted
        )
        or None,
    )
    return ApplyRun(plans, merged, results=results)


async def send_all(
    plans: PlanSet,
    clients: Sequence[MetaStudioClient],
    records: WriteOnlyRecords,
    parallelism: int,
    cancel: asyncio.Event,
    hooks: ApplyHooks,
    guards: Sequence[Guard],
) -> dict[str, ApplyResult]:
    """Send every target's changes at once, each target through its own client (its own
    pacing) and under its own write lock (``guards``, one per plan: each PUT checks first that
    the lock is still the run's); all targets finish before a failure of one is raised, so
    nothing is abandoned."""
    todo = len(plans.by_action(Action.UPDATE))
    if todo:
        hooks.on_start(todo, parallelism)
    several = len(plans.plans) > 1

    async def one(plan: Plan, client: MetaStudioClient, guard: Guard) -> ApplyResult:
        label = plan.target if several else None

        def named(result: AssetResult) -> AssetResult:
            return replace(result, target=label) if label else result

        result = await apply_plan(
            plan,
            client,
            state=records,
            parallelism=parallelism,
            cancel=cancel,
            on_result=lambda item: hooks.on_result(named(item)),
            guard=guard.check,
        )
        return replace(result, results=[named(r) for r in result.results])

    outcomes = await asyncio.gather(
        *(one(p, c, g) for p, c, g in zip(plans.plans, clients, guards, strict=True)),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return {
        str(plan.target): outcome
        for plan, outcome in zip(plans.plans, outcomes, strict=True)
        if isinstance(outcome, ApplyResult)
    }


Work = Callable[[asyncio.Event, WriteOnlyRecords], Awaitable[dict[str, ApplyResult]]]


def _send_interruptible(session: Session, work: Work, hooks: ApplyHooks) -> dict[str, ApplyResult]:
    """Run ``work(cancel, records)`` with the state open and Ctrl-C, SIGTERM and the run's
    deadline wired to the cancel event: nothing new starts, the requests in flight finish, and
    the results say what stopped them.  A second stop abandons the requests in flight
    (:class:`ApplyAborted`)."""
    stops: list[interrupts.Stopped] = []

    async def main(records: WriteOnlyRecords) -> dict[str, ApplyResult]:
        cancel = asyncio.Event()

        def on_stop(stop: interrupts.Stopped) -> None:
            stops.append(stop)
            cancel.set()
            hooks.on_interrupt(stop)

        with interrupts.graceful(on_stop):
            results = await work(cancel, records)
        if not stops:
            return results
        stop = stops[0]
        return {
            name: replace(result, interrupted_by=stop.cause, interrupt_exit_code=stop.exit_code)
            if result.interrupted
            else result
            for name, result in results.items()
        }

    try:
        with open_config_store(session.config) as store:
            return interrupts.run(main(store.records))
    except asyncio.CancelledError:
        aborted = ApplyAborted(
            "Apply aborted: requests in flight were abandoned and their outcome is unknown. "
            "Run `reconciler plan` to see the live state."
        )
        aborted.exit_code = stops[0].exit_code if stops else ApplyAborted.exit_code
        raise aborted from None
