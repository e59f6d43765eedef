"""Send a plan: one PUT per changed asset, bounded concurrency, verified, interruptible.

Only the exact ``AssetPlan.body`` of rows whose action is UPDATE is ever sent: nothing is
recomputed here, so what the user approved is what reaches the service.  Failures are per
asset; the engine (:mod:`reconciler.engine.apply`) judges each read and each response.

Around each PUT (design.md 3.11):

* **before**: the asset is read again, right before its PUT, the way it was planned (list rows
  through the list API, together with the next assets to be sent; assets planned from ShowAsset
  with ShowAsset).  If it is not the state the plan was made from,
  nothing is sent for it: it is *changed since plan*, and the others go on.
* **after**: the answer is checked against the body; when it lacks or differs in a sent field
  (the reference's own example answers with a few top-level fields), the asset is read back
  with ShowAsset before it is called not converged.  An answer about another asset is an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from reconciler.constants import ASSET_NOT_FOUND, PAGE_SIZE, WRITE_PARALLELISM
from reconciler.engine.apply import (
    ApplyResult,
    AssetResult,
    Outcome,
    ReadCounts,
    StaleAsset,
    answered_for,
    changed_since_plan,
    checked_rows,
    in_plan_order,
    needs_whole_read,
    not_applied,
    stale_assets,
    to_send,
    verify,
)
from reconciler.engine.plan import Action, AssetPlan, Plan
from reconciler.errors import ReconcilerError, unwrap
from reconciler.live.fetch import raw_of

log = logging.getLogger(__name__)

# A read made ahead of its write (with the next ones to be sent) is made again when it is older
# than this many seconds at the write: the window in which a console edit could be missed.
MAX_AGE = 2.0


class ApplyClient(Protocol):
    """The part of ``reconciler.api.client.MetaStudioClient`` that apply uses."""

    async def update(
        self, asset_id: str, body: Mapping[str, Any], app_user_id: str | None = None
    ) -> Any: ...

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> Mapping[str, Any]: ...

    async def show(self, asset_id: str, app_user_id: str | None = None) -> Any: ...


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
    """Send each UPDATE row's body once, at most ``parallelism`` at a time, each right after a
    fresh read that shows the state it was planned from (see the module docstring).

    Failures are per asset: the rest go on. When ``cancel`` is set nothing new starts, the
    requests in flight finish, and the remaining rows are reported as not started. ``on_result``
    is called as each asset finishes (for live output).
    """
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    cancel = cancel or asyncio.Event()
    report = on_result or (lambda _result: None)
    results: dict[str, AssetResult] = {}
    reads = ReadCounts()
    reader = FreshReader(client, reads, to_send(plan), parallelism)

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
            result = await _apply_one(row, client, reader, state, plan.project_id)
            results[row.asset_id] = result
            report(result)

    workers = [asyncio.create_task(worker()) for _ in range(min(parallelism, len(todo)))]
    try:
        if workers:
            await asyncio.gather(*workers)
    finally:
        await reader.finish()
    if todo:
        log.info(
            "apply read %d asset(s) right before writing them (%d list and %d show requests) "
            "and read back %d answer(s)",
            reads.fresh_assets,
            reads.fresh_lists,
            reads.fresh_shows,
            reads.read_backs,
        )
    return in_plan_order(plan, results, interrupted=cancel.is_set(), reads=reads)


class FreshReader:
    """Reads assets right before their writes, a few at a time.

    An asset planned from a list row is read through the list API together with the next ones
    to be sent (as many as there are writers, so about one list request per ``parallelism``
    writes): each read is at most a batch of writes old when its PUT goes out, and a read older
    than :data:`MAX_AGE` seconds (a slow service) is made again.  An asset planned from
    ShowAsset is read with ShowAsset, so that both reads have the same shape.
    """

    def __init__(
        self, client: ApplyClient, counts: ReadCounts, order: Sequence[AssetPlan], batch: int
    ) -> None:
        self.client = client
        self.counts = counts
        self.order = list(order)
        self.position = {row.asset_id: index for index, row in enumerate(self.order)}
        self.batch = max(1, min(batch, PAGE_SIZE))
        self._reads: dict[str, asyncio.Future[tuple[float, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, row: AssetPlan) -> dict[str, Any] | None:
        """The asset as the service has it now; None when it no longer exists."""
        if row.live_read == "show":
            return await self.show(row.asset_id, row.app_user_id)
        for _attempt in range(2):
            future = self._reads.pop(row.asset_id, None) or self._start(row)
            read_at, found = await future
            if time.monotonic() - read_at <= MAX_AGE:
                return None if found is None else raw_of(found)
        return None if found is None else raw_of(found)

    async def show(self, asset_id: str, app_user_id: str | None) -> dict[str, Any] | None:
        """ShowAsset; None when the service does not know the asset."""
        self.counts.fresh_shows += 1
        return await _show(self.client, asset_id, app_user_id)

    def _start(self, row: AssetPlan) -> asyncio.Future[tuple[float, Any]]:
        """Read ``row`` and the next rows to be sent that are not being read yet."""
        batch = [row]
        for later in self.order[self.position.get(row.asset_id, len(self.order)) + 1 :]:
            if len(batch) >= self.batch:
                break
            if later.live_read != "show" and later.asset_id not in self._reads:
                batch.append(later)
        loop = asyncio.get_running_loop()
        futures = {item.asset_id: loop.create_future() for item in batch}
        self._reads.update({k: v for k, v in futures.items() if k != row.asset_id})
        self.counts.fresh_lists += len({item.app_user_id for item in batch})
        self.counts.fresh_assets += len(batch)
        task = loop.create_task(self._fetch(batch, futures))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return futures[row.asset_id]

    async def finish(self) -> None:
        """Wait for reads still under way (ahead of writes that an interrupt did not start)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for future in self._reads.values():
            if future.done() and not future.cancelled():
                future.exception()  # read ahead for a write that never came: seen, not raised
        self._reads.clear()

    async def _fetch(
        self, batch: list[AssetPlan], futures: dict[str, asyncio.Future[tuple[float, Any]]]
    ) -> None:
        try:
            found = await self.client.fetch(
                [item.asset_id for item in batch], {i.asset_id: i.app_user_id for i in batch}
            )
        except BaseException as exc:  # handed to every write waiting for this read
            for asset_id, future in futures.items():
                if self._reads.get(asset_id) is future:
                    del self._reads[asset_id]  # a later write reads again
                if not future.done():
                    future.set_exception(unwrap(exc))
            if not isinstance(exc, Exception):
                raise
            return
        read_at = time.monotonic()
        for asset_id, future in futures.items():
            if not future.done():
                future.set_result((read_at, found.get(asset_id)))


async def _show(
    client: ApplyClient, asset_id: str, app_user_id: str | None
) -> dict[str, Any] | None:
    try:
        return raw_of(await client.show(asset_id, app_user_id))
    except ReconcilerError as exc:
        if getattr(exc, "error_code", None) == ASSET_NOT_FOUND:
            return None
        raise


def _failed(row: AssetPlan, exc: ReconcilerError, stage: str | None = None) -> AssetResult:
    return AssetResult(
        row.asset_id,
        row.name,
        Outcome.FAILED,
        status=getattr(exc, "status", None),
        error_code=getattr(exc, "error_code", None),
        error_msg=getattr(exc, "error_msg", None) or str(exc),
        request_id=getattr(exc, "request_id", None),
        stage=stage,
    )


async def _fresh_verdict(row: AssetPlan, reader: FreshReader) -> AssetResult | None:
    """None when a fresh read shows the state the row was planned from; else why not to send."""
    fresh = await reader.read(row)
    if fresh is not None and needs_whole_read(row, fresh):
        fresh = await reader.show(row.asset_id, row.app_user_id)  # a summary row: read it whole
    return changed_since_plan(row, fresh)


async def _apply_one(
    row: AssetPlan,
    client: ApplyClient,
    reader: FreshReader,
    state: WriteOnlyRecorder | None,
    project_id: str | None,
) -> AssetResult:
    body = row.body or {}
    try:
        refused = await _fresh_verdict(row, reader)
    except ReconcilerError as exc:
        return _failed(row, exc, stage="read")
    if refused is not None:
        log.warning("asset %s changed since the plan was made; nothing sent", row.asset_id)
        return refused
    try:
        updated = await client.update(row.asset_id, body, app_user_id=row.app_user_id)
    except ReconcilerError as exc:
        return _failed(row, exc)
    request_id: str | None = getattr(updated, "request_id", None)
    raw = raw_of(updated) if updated is not None else {}
    other = answered_for(row, raw)
    if other is not None:
        log.warning("the PUT of %s was answered with asset %s", row.asset_id, other)
        return AssetResult(
            row.asset_id, row.name, Outcome.FAILED, request_id=request_id, wrong_asset=other
        )
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
    mismatches = verify(body, raw)
    if mismatches:
        # A short or older answer proves nothing either way: read the asset back.
        log.debug(
            "asset %s: the answer does not show %s; reading it back", row.asset_id, mismatches
        )
        reader.counts.read_backs += 1
        try:
            back = await _show(client, row.asset_id, row.app_user_id)
        except ReconcilerError as exc:
            return _failed(row, exc, stage="read-back")
        mismatches = verify(body, back or {})
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
    """Re-read the plan's assets the way each was planned (one bulk fetch for list rows,
    ShowAsset for rows planned from it); those whose fingerprint moved are stale."""
    rows = checked_rows(plan)
    if not rows:
        return []
    listed = [r for r in rows if r.live_read != "show"]
    live: dict[str, dict[str, Any]] = {}
    try:
        if listed:
            found = await client.fetch(
                [r.asset_id for r in listed], {r.asset_id: r.app_user_id for r in listed}
            )
            live.update({k: raw_of(v) for k, v in found.items()})
        for row in rows:
            if row.live_read == "show":
                shown = await _show(client, row.asset_id, row.app_user_id)
                if shown is not None:
                    live[row.asset_id] = shown
    except BaseExceptionGroup as group:  # concurrent page reads fail as a group
        raise unwrap(group) from None
    return stale_assets(rows, live, fingerprint)
