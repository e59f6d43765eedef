"""Send a plan: one PUT per changed asset, bounded concurrency, verified, interruptible.

Only the exact ``AssetPlan.body`` of rows whose action is UPDATE is ever sent: nothing is
recomputed here, so what the user approved is what reaches the service.  Failures are per
asset; the engine (:mod:`reconciler.engine.apply`) judges each read and each response.

Around each PUT attempt, the first and every retry (design.md 3.11):

* **before**: the asset is read again the way it was planned (list rows through the list API,
  together with the next assets to be sent; assets planned from ShowAsset with ShowAsset), after
  the attempt's turn at the pacer came and at most :data:`MAX_AGE` seconds before it goes out.
  If it is not the state the plan was made from, nothing is sent for it: it is *changed since
  plan*, and the others go on.
* **no answer**: a PUT that may have reached the service but got no answer (a lost connection,
  a timeout, a 5xx without the service's error body) is resolved by reading the asset back at
  once: the planned values are there (*applied, answer lost*), the planned-from state is still
  there (it may be retried, through the rule above), or neither (*outcome unknown*).
* **retries** happen here, not in the client: after a 429 (its ``Retry-After``, which does not
  use up the retry budget) or a back-off.  A stop (Ctrl-C, SIGTERM, ``--timeout``) ends every
  wait at once, and a wait that would end past the run's deadline is not started: the asset is
  *not sent*.
* **after**: the answer is checked against the body; when it lacks or differs in a sent field
  (the reference's own example answers with a few top-level fields), the asset is read back
  with ShowAsset before it is called not converged.  An answer about another asset is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from reconciler import interrupts
from reconciler.api.client import PutFailure, RetryPolicy
from reconciler.api.errors import AssetNotFound
from reconciler.api.retries import RetryTally
from reconciler.constants import PAGE_SIZE, WRITE_PARALLELISM
from reconciler.engine.apply import (
    ApplyResult,
    AssetResult,
    Landed,
    Outcome,
    ReadCounts,
    StaleAsset,
    answered_for,
    changed_since_plan,
    checked_rows,
    in_plan_order,
    landed,
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

    retry: RetryPolicy
    tally: RetryTally

    async def write_slot(self, *, retry: bool = False) -> None: ...

    async def put_once(
        self, asset_id: str, body: Mapping[str, Any], app_user_id: str | None = None
    ) -> Any: ...

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> Mapping[str, Any]: ...

    async def show(self, asset_id: str, app_user_id: str | None = None) -> Any: ...


class WriteOnlyRecorder(Protocol):
    """The part of :class:`reconciler.state.WriteOnlyRecords` that apply uses."""

    def record(self, project_id: str, asset_id: str, fingerprint: str) -> Any: ...


ResultCallback = Callable[[AssetResult], None]
T = TypeVar("T")


class _Stopped:
    """What :func:`_unless_stopped` returns when the stop came first."""


STOPPED = _Stopped()


async def _unless_stopped(work: Awaitable[T], cancel: asyncio.Event) -> T | _Stopped:
    """``await work``, unless ``cancel`` is set first: then ``work`` is cancelled (a read, a
    wait for the pacer or a back-off: never a request already on the wire)."""
    task = asyncio.ensure_future(work)
    if cancel.is_set():
        task.cancel()
    stop = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return STOPPED
    return task.result()


async def apply_plan(
    plan: Plan,
    client: ApplyClient,
    *,
    state: WriteOnlyRecorder | None = None,
    parallelism: int = WRITE_PARALLELISM,
    cancel: asyncio.Event | None = None,
    on_result: ResultCallback | None = None,
    guard: Callable[[], None] | None = None,
) -> ApplyResult:
    """Send each UPDATE row's body once, at most ``parallelism`` at a time, each right after a
    fresh read that shows the state it was planned from (see the module docstring).

    ``guard`` is called right before each PUT goes out: when it raises (the run's write lock
    is no longer its own), that PUT and every one after it are not sent, and the result says
    why (``ApplyResult.halted``).

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

    halted: list[str] = []

    def may_write() -> str | None:
        """None while the run may write; else why it stopped (said once)."""
        if not halted and guard is not None:
            try:
                guard()
            except ReconcilerError as exc:
                log.error("stopped writing: %s", exc)
                halted.append(str(exc))
        return halted[0] if halted else None

    async def worker() -> None:
        while not cancel.is_set() and not halted:
            try:
                row = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            attempts = _Attempts(row, client, reader, cancel, may_write)
            result = await attempts.run(state, plan.project_id)
            if result is None:  # stopped before its first attempt
                return
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
            "apply read %d asset(s) right before writing them (%d list and %d show requests), "
            "read back %d answer(s) and made %d read(s) around retries",
            reads.fresh_assets,
            reads.fresh_lists,
            reads.fresh_shows,
            reads.read_backs,
            reads.retry_reads,
        )
    done = in_plan_order(plan, results, interrupted=cancel.is_set(), reads=reads)
    return replace(done, halted=halted[0]) if halted else done


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
            # Shielded: a write stopped while it waits must not cancel a read other writes share.
            read_at, found = await asyncio.shield(future)
            if time.monotonic() - read_at <= MAX_AGE:
                return None if found is None else raw_of(found)
        return None if found is None else raw_of(found)

    async def read_alone(self, row: AssetPlan) -> dict[str, Any] | None:
        """The asset now, read by itself the way it was planned (around a retry)."""
        self.counts.retry_reads += 1
        if row.live_read == "show":
            return await _show(self.client, row.asset_id, row.app_user_id)
        found = await self.client.fetch([row.asset_id], {row.asset_id: row.app_user_id})
        item = found.get(row.asset_id)
        return None if item is None else raw_of(item)

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
                    # No write has claimed it yet: that write will read again.  Cancelled, not
                    # failed: an error nobody retrieves would be logged with a traceback.
                    del self._reads[asset_id]
                    future.cancel()
                elif not future.done():
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
    except AssetNotFound:
        return None


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


class _Attempts:
    """The attempts of one asset's PUT: each after its turn at the pacer and a fresh read that
    shows the planned-from state, lost answers resolved by reading back, waits cut by a stop."""

    def __init__(
        self,
        row: AssetPlan,
        client: ApplyClient,
        reader: FreshReader,
        cancel: asyncio.Event,
        may_write: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.row = row
        self.client = client
        self.reader = reader
        self.cancel = cancel
        self.may_write = may_write
        self.body = row.body or {}
        self.sent = 0  # attempts put on the wire
        self.failures = 0  # failed attempts that count against the retry budget (not 429s)
        self.throttles = 0  # 429s waited out
        self.started = time.monotonic()
        # The latest read of the asset and when it was made (None: read before the next try).
        self.read: tuple[float, dict[str, Any] | None] | None = None

    async def run(
        self, state: WriteOnlyRecorder | None, project_id: str | None
    ) -> AssetResult | None:
        """The asset's result; None when a stop came before its first attempt."""
        throttled = False
        while True:
            step = await self._before_attempt(throttled)
            if isinstance(step, _Stopped):
                return self._stopped(None)
            if step is not None:
                return step
            halted = self.may_write()
            if halted is not None:
                return self._with(
                    AssetResult(self.row.asset_id, self.row.name, Outcome.NOT_SENT, halted=halted)
                )
            outcome = await self.client.put_once(
                self.row.asset_id, self.body, app_user_id=self.row.app_user_id
            )
            self.sent += 1
            self.read = None  # the next attempt needs a read made after this one
            if not isinstance(outcome, PutFailure):
                answered = await _answered(
                    self.row, outcome, self.client, self.reader, state, project_id
                )
                return self._with(answered)
            failure = outcome
            if failure.maybe_applied:
                resolved = await self._resolve(failure, state, project_id)
                if resolved is not None:
                    return resolved
            if not failure.retryable:
                return self._with(_failed(self.row, failure.error))
            wait = failure.wait
            if failure.throttled:
                self.throttles += 1
            else:
                self.failures += 1
                wait = self.client.retry.backoff(self.failures - 1)
            policy = self.client.retry
            out_of_time = time.monotonic() + wait > self.started + policy.total_time
            over = self.failures > policy.max_retries or self.throttles > policy.max_throttled
            if over or out_of_time:
                return self._with(_failed(self.row, failure.error))
            left = interrupts.remaining()
            if left is not None and wait >= left:
                return self._stopped(wait, deadline=True)
            log.debug("retrying the PUT of %s in %.2fs: %s", self.row.asset_id, wait, failure.error)
            if not failure.throttled:
                self.client.tally.retry(failure.kind or "error", first=self.failures == 1)
            if await _unless_stopped(asyncio.sleep(wait), self.cancel) is STOPPED:
                return self._stopped(wait)
            throttled = failure.throttled

    async def _before_attempt(self, throttled: bool) -> AssetResult | _Stopped | None:
        """Wait for the pacer and make sure of a fresh read that shows the planned-from state:
        None to send now, else the asset's result, or ``STOPPED``.

        The first attempt's read was made ahead, batched with the next writes; it is made again
        when the pacer held the attempt back for longer than :data:`MAX_AGE`.  A retry reads
        after its turn at the pacer came, unless a read-back just showed the planned-from state.
        """
        try:
            if self.read is None and not self.sent:
                step = await self._read_and_check(again=False)
                if step is not None:
                    return step
            slot = self.client.write_slot(retry=throttled)
            if await _unless_stopped(slot, self.cancel) is STOPPED:
                return STOPPED
            if self.read is not None and time.monotonic() - self.read[0] <= MAX_AGE:
                return None
            return await self._read_and_check(again=True)
        except ReconcilerError as exc:
            return self._with(_failed(self.row, exc, stage="read"))

    async def _read_and_check(self, *, again: bool) -> AssetResult | _Stopped | None:
        """Read the asset (stoppable); None when it shows the planned-from state."""
        read = await _unless_stopped(self._fresh(again=again), self.cancel)
        if isinstance(read, _Stopped):
            return STOPPED
        self.read = (time.monotonic(), read)
        refused = changed_since_plan(self.row, read)
        return None if refused is None else self._changed(refused)

    async def _fresh(self, *, again: bool = False) -> dict[str, Any] | None:
        """The asset now: the batched read ahead of the first attempt, alone after that."""
        if self.sent or again:
            fresh = await self.reader.read_alone(self.row)
        else:
            fresh = await self.reader.read(self.row)
        if fresh is not None and needs_whole_read(self.row, fresh):
            fresh = await self.reader.show(self.row.asset_id, self.row.app_user_id)
        return fresh

    async def _resolve(
        self, failure: PutFailure, state: WriteOnlyRecorder | None, project_id: str | None
    ) -> AssetResult | None:
        """Read back after an attempt that may have landed: its result, or None when the asset
        still shows the planned-from state (that read then precedes the next attempt)."""
        try:
            back = await self._fresh(again=True)
        except ReconcilerError as exc:
            log.warning(
                "asset %s: reading back after a lost answer failed: %s", self.row.asset_id, exc
            )
            back, verdict = None, Landed.UNKNOWN
        else:
            verdict = landed(self.row, self.body, back)
        kind = failure.kind or "no answer"
        if verdict is Landed.YES:
            log.warning(
                "asset %s: the PUT's answer was lost (%s); reading back shows it landed",
                self.row.asset_id,
                kind,
            )
            _record_write_only(self.row, state, project_id, None)
            return self._with(
                AssetResult(self.row.asset_id, self.row.name, Outcome.ANSWER_LOST, lost=kind)
            )
        if verdict is Landed.UNKNOWN:
            log.warning("asset %s: outcome unknown after %s", self.row.asset_id, kind)
            return self._with(
                AssetResult(
                    self.row.asset_id,
                    self.row.name,
                    Outcome.UNKNOWN,
                    status=failure.error.status,
                    error_msg=failure.error.error_msg,
                    lost=kind,
                )
            )
        self.read = (time.monotonic(), back)
        return None

    def _with(self, result: AssetResult) -> AssetResult:
        return replace(result, attempts=self.sent)

    def _changed(self, refused: AssetResult) -> AssetResult:
        log.warning("asset %s changed since the plan was made; nothing sent", self.row.asset_id)
        return self._with(refused)

    def _stopped(self, wait: float | None, *, deadline: bool = False) -> AssetResult | None:
        """A stop before this asset's first attempt leaves it "not started"; after one, it is
        "not sent" (every attempt that went out is known not to have landed)."""
        if not self.sent:
            return None
        return self._with(
            AssetResult(
                self.row.asset_id, self.row.name, Outcome.NOT_SENT, waiting=wait, deadline=deadline
            )
        )


def _record_write_only(
    row: AssetPlan, state: WriteOnlyRecorder | None, project_id: str | None, request_id: str | None
) -> None:
    """The service accepted the write-only values: remember them, so that the next plan does
    not re-send them needlessly."""
    if state is None or not row.write_only_fingerprint or not project_id:
        return
    try:
        state.record(project_id, row.asset_id, row.write_only_fingerprint)
    except ReconcilerError as exc:  # the PUT did happen: report, don't lose the result
        log.warning(
            "asset %s updated, but its write-only record failed: %s",
            row.asset_id,
            exc,
            extra={"asset_id": row.asset_id, "request_id": request_id},
        )


async def _answered(
    row: AssetPlan,
    updated: Any,
    client: ApplyClient,
    reader: FreshReader,
    state: WriteOnlyRecorder | None,
    project_id: str | None,
) -> AssetResult:
    """The result of a PUT that was answered: checked against the body, read back if needed."""
    body = row.body or {}
    request_id: str | None = getattr(updated, "request_id", None)
    raw = raw_of(updated) if updated is not None else {}
    other = answered_for(row, raw)
    if other is not None:
        log.warning("the PUT of %s was answered with asset %s", row.asset_id, other)
        return AssetResult(
            row.asset_id, row.name, Outcome.FAILED, request_id=request_id, wrong_asset=other
        )
    # Remembered even if another field did not converge: the service took the values.
    _record_write_only(row, state, project_id, request_id)
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
