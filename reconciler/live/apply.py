"""Send a plan: one PUT per changed asset, bounded concurrency, verified, interruptible.

Only the exact ``AssetPlan.body`` of rows whose action is UPDATE is ever sent: nothing is
recomputed here, so what the user approved is what reaches the service.  Failures are per
asset; the engine (:mod:`reconciler.engine.apply`) judges each response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from reconciler.constants import WRITE_PARALLELISM
from reconciler.engine.apply import (
    ApplyResult,
    AssetResult,
    Outcome,
    StaleAsset,
    checked_rows,
    in_plan_order,
    not_applied,
    stale_assets,
    to_send,
    verify,
)
from reconciler.engine.plan import Action, AssetPlan, Plan
from reconciler.errors import ReconcilerError, unwrap
from reconciler.live.fetch import raw_of

log = logging.getLogger(__name__)


class ApplyClient(Protocol):
    """The part of ``reconciler.api.client.MetaStudioClient`` that apply uses."""

    async def update(
        self, asset_id: str, body: Mapping[str, Any], app_user_id: str | None = None
    ) -> Any: ...

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> Mapping[str, Any]: ...


class WriteOnlyRecorder(Protocol):
    """The part of ``reconciler.engine.state.WriteOnlyState`` that apply uses."""

    def record(self, project_id: str, asset_id: str, fingerprint: str) -> Any: ...


ResultCallback = Callable[[AssetResult], None]


async def apply_plan(
    plan: Plan,
    client: ApplyClient,
    *,
    state: WriteOnlyRecorder | None = None,
    parallelism: int = WRITE_PARALLELISM,
    cancel: asyncio.Event | None = None,
    on_result: ResultCallback | None = None,
) -> ApplyResult:
    """Send each UPDATE row's body once, at most ``parallelism`` at a time.

    Failures are per asset: the rest go on. When ``cancel`` is set nothing new starts, the
    requests in flight finish, and the remaining rows are reported as not started. ``on_result``
    is called as each asset finishes (for live output).
    """
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    cancel = cancel or asyncio.Event()
    report = on_result or (lambda _result: None)
    results: dict[str, AssetResult] = {}

    for row in plan.assets:
        if row.action in (Action.ERROR, Action.BLOCKED):
            results[row.asset_id] = not_applied(row)
            report(results[row.asset_id])

    todo = to_send(plan)
    queue: asyncio.Queue[AssetPlan] = asyncio.Queue()
    for row in todo:
        queue.put_nowait(row)

    async def worker() -> None:
        while not cancel.is_set():
            try:
                row = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            result = await _apply_one(row, client, state, plan.project_id)
            results[row.asset_id] = result
            report(result)

    workers = [asyncio.create_task(worker()) for _ in range(min(parallelism, len(todo)))]
    if workers:
        await asyncio.gather(*workers)
    return in_plan_order(plan, results, interrupted=cancel.is_set())


async def _apply_one(
    row: AssetPlan, client: ApplyClient, state: WriteOnlyRecorder | None, project_id: str | None
) -> AssetResult:
    body = row.body or {}
    try:
        updated = await client.update(row.asset_id, body, app_user_id=row.app_user_id)
    except ReconcilerError as exc:
        return AssetResult(
            row.asset_id,
            row.name,
            Outcome.FAILED,
            status=getattr(exc, "status", None),
            error_code=getattr(exc, "error_code", None),
            error_msg=getattr(exc, "error_msg", None) or str(exc),
            request_id=getattr(exc, "request_id", None),
        )
    request_id: str | None = getattr(updated, "request_id", None)
    # The service accepted the write-only values: remember them even if another field did not
    # converge, so the next plan does not re-send them needlessly.
    if state is not None and row.write_only_fingerprint and project_id:
        try:
            state.record(project_id, row.asset_id, row.write_only_fingerprint)
        except ReconcilerError as exc:  # the PUT did happen: report, don't lose the result
            log.warning(
                "asset %s updated, but its write-only record failed: %s",
                row.asset_id,
                exc,
                extra={"asset_id": row.asset_id, "request_id": request_id},
            )
    raw: dict[str, Any] = getattr(updated, "raw", None) or {}
    mismatches = verify(body, raw)
    if mismatches:
        log.warning(
            "asset %s did not converge: the service did not take %s",
            row.asset_id,
            ", ".join(m.path for m in mismatches),
            extra={"asset_id": row.asset_id, "request_id": request_id},
        )
        return AssetResult(
            row.asset_id,
            row.name,
            Outcome.NOT_CONVERGED,
            request_id=request_id,
            mismatches=tuple(mismatches),
        )
    return AssetResult(row.asset_id, row.name, Outcome.UPDATED, request_id=request_id)


async def find_stale(
    plan: Plan,
    client: ApplyClient,
    fingerprint: Callable[[Mapping[str, Any]], str],
) -> list[StaleAsset]:
    """Re-read the plan's assets in one bulk fetch; those whose fingerprint moved are stale."""
    rows = checked_rows(plan)
    if not rows:
        return []
    try:
        live = await client.fetch(
            [r.asset_id for r in rows], {r.asset_id: r.app_user_id for r in rows}
        )
    except BaseExceptionGroup as group:  # concurrent page reads fail as a group
        raise unwrap(group) from None
    return stale_assets(rows, {k: raw_of(v) for k, v in live.items()}, fingerprint)
