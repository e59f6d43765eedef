"""The self-heal of ``watch --self-heal``: apply's own steps, for the assets found drifted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from reconciler.constants import WRITE_PARALLELISM
from reconciler.engine.apply import ApplyResult
from reconciler.engine.plan import Action, AssetPlan, Plan, PlanSet
from reconciler.engine.planner import desired_from_loaded, with_rules
from reconciler.engine.safety import Crossing
from reconciler.live.plan import build_plan
from reconciler.manifest.loader import LoadedManifest
from reconciler.run.apply import ApplyHooks, send_all
from reconciler.run.locks import project_lock
from reconciler.run.plan import target_rules
from reconciler.run.session import Session
from reconciler.state import LockHeld, WriteOnlyRecords


@dataclass
class HealRun:
    """One self-heal attempt on one target: the plan made under the lock and what applying it
    did, or why nothing was sent (``refused``: the plan crosses the target's safety threshold;
    ``locked``: another writer holds the lock; ``violated``: drifted assets whose heal a
    policy rule refuses, not sent while the others are)."""

    plan: Plan | None = None
    result: ApplyResult | None = None
    refused: Crossing | None = None
    locked: LockHeld | None = None
    violated: list[AssetPlan] = field(default_factory=list)


async def heal(
    session: Session,
    loaded: Sequence[LoadedManifest],
    asset_ids: Sequence[str],
    *,
    parallelism: int = WRITE_PARALLELISM,
    cancel: asyncio.Event | None = None,
    hooks: ApplyHooks | None = None,
) -> HealRun:
    """Apply the manifests of ``asset_ids`` back through apply's own steps: under the target's
    project lock (failing at once when another writer has it), from a plan of every managed
    asset made under that lock, refused when that plan crosses the target's safety threshold
    (``safety:`` in reconciler.yaml; apply's rule without ``--force``), and sent by apply's
    sender.  Only the UPDATE rows of ``asset_ids`` are sent."""
    hooks = hooks or ApplyHooks()
    try:
        with (
            project_lock(session, command="watch --self-heal") as guard,
            session.store() as store,
        ):
            plan = await _plan_all(session, loaded, store.records, parallelism, hooks)
            crossing = plan.crossing
            if crossing is not None:
                return HealRun(plan=plan, refused=crossing)
            wanted = set(asset_ids)
            rows = [a for a in plan.assets if a.asset_id in wanted and a.action is Action.UPDATE]
            violated = [a for a in rows if a.violations]  # never healed into a violation
            rows = [a for a in rows if not a.violations]
            if violated and not rows:
                return HealRun(plan=plan, violated=violated)
            chosen = PlanSet([replace(plan, assets=rows)], created_at=plan.created_at)
            async with session.client(parallelism) as client:
                results = await send_all(
                    chosen,
                    [client],
                    store.records,
                    parallelism,
                    cancel or asyncio.Event(),
                    hooks,
                    [guard],
                )
            return HealRun(plan=plan, result=next(iter(results.values())), violated=violated)
    except LockHeld as exc:
        return HealRun(locked=exc)


async def _plan_all(
    session: Session,
    loaded: Sequence[LoadedManifest],
    records: WriteOnlyRecords,
    parallelism: int,
    hooks: ApplyHooks,
) -> Plan:
    """The target's plan of every managed asset, carrying the target's own safety settings."""
    target = session.target
    say = hooks.progress or (lambda _message: None)
    desired = with_rules([desired_from_loaded(item) for item in loaded], target_rules(session))
    say(f"Reading {len(desired)} live assets from {target.endpoint}...")
    started = time.monotonic()
    async with session.client(parallelism) as client:
        plan = await build_plan(
            desired,
            client,
            state=records,
            target_name=target.name,
            project_id=target.project_id,
            endpoint=target.endpoint,
            parallelism=parallelism,
        )
    plan.safety = session.safety()
    say(f"Planned {len(plan.assets)} assets in {time.monotonic() - started:.1f}s.")
    return plan
