"""The apply loop: what reaches the service and what the user is told, under every answer."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from reconciler import interrupts
from reconciler.api.client import PutFailure, RetryPolicy
from reconciler.api.errors import ApiError
from reconciler.api.retries import RetryTally
from reconciler.engine.apply import ApplyResult, AssetResult, Outcome, ReadCounts
from reconciler.engine.plan import Action, AssetPlan, Plan
from reconciler.errors import ReconcilerError
from reconciler.live import apply as live_apply
from reconciler.live.apply import apply_plan, find_stale

from .test_apply import Recorder, api_error, not_found
from .test_apply_attempts import Answer, error

LOGGER = "reconciler.live.apply"
FAST = RetryPolicy(
    max_retries=2, backoff_base=0.001, backoff_cap=0.001, throttle_delay=(0.001, 0.001)
)


class Desk:
    """A service of several assets whose PUT attempts follow a script per asset.

    Every call is logged in order with what it carried: ``("list", ids, app users)``,
    ``("show", id, app user)``, ``("put", id, app user)`` and ``("slot", retry)``.  PUT steps:
    "ok" (stored, answered), "short" (stored, answered with the id only), "none" (stored,
    answered with nothing), "lost" (stored, no answer), "gone" (not stored, no answer),
    "refused" (a 503 with the service's error body), "bare" (a retryable failure of no kind),
    "429", "fatal" (a 400), "other" (answered about another asset), "ignored" (answered, the
    service kept the old values).
    """

    def __init__(self, assets: dict[str, dict[str, Any]], **scripts: list[str]) -> None:
        self.assets = assets
        self.scripts = scripts
        self.calls: list[tuple[Any, ...]] = []
        self.retry = FAST
        self.tally = RetryTally()
        self.fetch_errors: list[BaseException] = []
        self.show_errors: dict[str, list[BaseException]] = {}
        self.lost_kind = "timeout"
        self.lost_error: ApiError = error(504)

    async def write_slot(self, *, retry: bool = False) -> None:
        self.calls.append(("slot", retry))
        await asyncio.sleep(0)

    async def put_once(
        self, asset_id: str, body: Mapping[str, Any], app_user_id: str | None = None
    ) -> Answer | PutFailure | None:
        step = self.scripts[asset_id].pop(0)
        self.calls.append(("put", asset_id, app_user_id))
        if step in ("ok", "short", "none", "lost"):
            self.assets[asset_id].update(body)
        if step == "ok":
            return Answer(dict(self.assets[asset_id]), request_id=f"rid-{asset_id}")
        if step == "short":
            return Answer({"asset_id": asset_id}, request_id=f"rid-{asset_id}")
        if step == "none":
            return None
        if step == "ignored":
            return Answer(dict(self.assets[asset_id]), request_id=f"rid-{asset_id}")
        if step == "other":
            return Answer({"asset_id": "someone-else"}, request_id=f"rid-{asset_id}")
        if step in ("lost", "gone"):
            return PutFailure(
                self.lost_error, retryable=True, maybe_applied=True, kind=self.lost_kind
            )
        if step == "refused":
            return PutFailure(error(503), retryable=True, maybe_applied=False, kind="HTTP 503")
        if step == "bare":
            return PutFailure(error(503), retryable=True, maybe_applied=False)
        if step == "429":
            wait = self.retry.throttle(None)
            return PutFailure(error(429), True, False, wait=wait, throttled=True)
        return PutFailure(
            api_error(400, "MSS.10000003", "bad"), retryable=False, maybe_applied=False
        )

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> dict[str, Answer]:
        self.calls.append(("list", list(asset_ids), dict(app_user_ids or {})))
        await asyncio.sleep(0)
        if self.fetch_errors:
            raise self.fetch_errors.pop(0)
        return {a: Answer(dict(self.assets[a])) for a in asset_ids if a in self.assets}

    async def show(self, asset_id: str, app_user_id: str | None = None) -> Answer:
        self.calls.append(("show", asset_id, app_user_id))
        await asyncio.sleep(0)
        if self.show_errors.get(asset_id):
            raise self.show_errors[asset_id].pop(0)
        if asset_id not in self.assets:
            raise not_found(asset_id)
        return Answer(dict(self.assets[asset_id]))

    def sent(self) -> list[tuple[Any, ...]]:
        """The calls that reach the service (the pacer's turns left out)."""
        return [c for c in self.calls if c[0] != "slot"]


def update(asset_id: str, body: dict[str, Any], desk: Desk, **kw: Any) -> AssetPlan:
    """An UPDATE row planned from the desk's current asset."""
    row = AssetPlan(asset_id=asset_id, action=Action.UPDATE, name=f"n-{asset_id}", body=body, **kw)
    if asset_id in desk.assets:
        row.live = dict(desk.assets[asset_id])
    return row


async def apply(desk: Desk, *rows: AssetPlan, **kw: Any) -> ApplyResult:
    return await asyncio.wait_for(apply_plan(Plan(list(rows), project_id="p"), desk, **kw), 5)


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


# --- the loop: parallelism, live output, the read summary --------------------------------------


async def test_one_writer_reads_each_asset_right_before_its_own_write() -> None:
    desk = Desk({"a": {"asset_order": 1}, "b": {"asset_order": 1}}, a=["ok"], b=["ok"])
    result = await apply(
        desk,
        update("a", {"asset_order": 2}, desk),
        update("b", {"asset_order": 3}, desk),
        parallelism=1,
    )
    assert desk.sent() == [
        ("list", ["a"], {"a": None}),
        ("put", "a", None),
        ("list", ["b"], {"b": None}),
        ("put", "b", None),
    ]
    assert [r.outcome for r in result.results] == [Outcome.UPDATED, Outcome.UPDATED]
    assert result.reads == ReadCounts(fresh_lists=2, fresh_assets=2)


async def test_parallelism_below_one_says_so() -> None:
    with pytest.raises(ReconcilerError, match=r"^--parallelism must be at least 1$"):
        await apply(Desk({}), parallelism=0)


async def test_live_output_gets_every_result_as_it_is_known() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["ok"])
    error_row = AssetPlan(asset_id="e", action=Action.ERROR, name="n-e", errors=["bad"])
    seen: list[AssetResult] = []
    result = await apply(
        desk, error_row, update("a", {"asset_order": 2}, desk), on_result=seen.append
    )
    assert seen == [result.results[0], result.results[1]]
    assert [(r.asset_id, r.outcome) for r in seen] == [
        ("e", Outcome.NOT_APPLIED),
        ("a", Outcome.UPDATED),
    ]


async def test_the_reads_made_are_summarised(caplog: pytest.LogCaptureFixture) -> None:
    desk = Desk(
        {"a": {"asset_order": 1}, "s": {"asset_order": 1}, "c": {"asset_order": 1}},
        a=["refused", "ok"],
        s=["short"],
        c=["ok"],
    )
    caplog.set_level(logging.INFO, LOGGER)
    result = await apply(
        desk,
        update("a", {"asset_order": 2}, desk, app_user_id="u1"),
        update("s", {"asset_order": 2}, desk, live_read="show"),
        update("c", {"asset_order": 2}, desk, app_user_id="u2"),
        parallelism=3,
    )
    assert result.reads == ReadCounts(
        fresh_lists=2, fresh_assets=2, fresh_shows=1, read_backs=1, retry_reads=1
    )
    assert (
        "apply read 2 asset(s) right before writing them (2 list and 1 show requests), "
        "read back 1 answer(s) and made 1 read(s) around retries"
    ) in messages(caplog)


# --- FreshReader: batched list reads, ShowAsset rows, reads too old ---------------------------


async def test_show_rows_are_read_with_show_and_left_out_of_list_batches() -> None:
    desk = Desk({k: {"asset_order": 1} for k in "asc"}, a=["ok"], s=["ok"], c=["ok"])
    await apply(
        desk,
        update("a", {"asset_order": 2}, desk, app_user_id="u1"),
        update("s", {"asset_order": 2}, desk, app_user_id="u9", live_read="show"),
        update("c", {"asset_order": 2}, desk, app_user_id="u2"),
        parallelism=3,
    )
    reads = [c for c in desk.calls if c[0] in ("list", "show")]
    assert sorted(reads, key=repr) == [
        ("list", ["a", "c"], {"a": "u1", "c": "u2"}),
        ("show", "s", "u9"),
    ]


async def test_a_show_row_that_is_gone_is_changed_and_not_sent() -> None:
    desk = Desk({"s": {"asset_order": 1}}, s=["ok"])
    row = update("s", {"asset_order": 2}, desk, live_read="show")
    del desk.assets["s"]
    result = await apply(desk, row)
    res = result.results[0]
    assert (res.outcome, res.gone, res.attempts) == (Outcome.CHANGED, True, 0)
    assert desk.scripts["s"] == ["ok"]


async def test_a_listed_asset_that_is_gone_is_changed_and_not_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["ok"])
    row = update("a", {"asset_order": 2}, desk)
    del desk.assets["a"]
    caplog.set_level(logging.WARNING, LOGGER)
    result = await apply(desk, row)
    res = result.results[0]
    assert (res.asset_id, res.name, res.outcome, res.gone) == ("a", "n-a", Outcome.CHANGED, True)
    assert messages(caplog) == ["asset a changed since the plan was made; nothing sent"]


async def test_a_read_older_than_max_age_is_made_again_once_then_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live_apply, "MAX_AGE", -1.0)  # every read is too old by the time it is used
    desk = Desk({"a": {"asset_order": 1}}, a=["ok"])
    result = await apply(desk, update("a", {"asset_order": 2}, desk))
    assert desk.sent() == [
        ("list", ["a"], {"a": None}),
        ("list", ["a"], {"a": None}),
        ("list", ["a"], {"a": None}),
        ("put", "a", None),
    ]
    assert result.reads == ReadCounts(fresh_lists=2, fresh_assets=2, retry_reads=1)
    assert result.results[0].outcome is Outcome.UPDATED


async def test_an_asset_gone_at_a_read_made_again_is_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live_apply, "MAX_AGE", -1.0)
    desk = Desk({"a": {"asset_order": 1}}, a=["ok"])
    row = update("a", {"asset_order": 2}, desk)
    del desk.assets["a"]
    res = (await apply(desk, row)).results[0]
    assert (res.outcome, res.gone, res.attempts) == (Outcome.CHANGED, True, 0)


async def test_every_show_read_before_a_write_is_counted() -> None:
    desk = Desk({"s": {"asset_order": 1}, "t": {"asset_order": 1}}, s=["ok"], t=["ok"])
    result = await apply(
        desk,
        update("s", {"asset_order": 2}, desk, live_read="show"),
        update("t", {"asset_order": 2}, desk, live_read="show"),
    )
    assert result.reads == ReadCounts(fresh_shows=2)


async def test_a_show_that_fails_without_an_error_code_fails_the_asset() -> None:
    desk = Desk({"s": {"asset_order": 1}}, s=["ok"])
    desk.show_errors["s"] = [ReconcilerError("connection reset")]
    res = (await apply(desk, update("s", {"asset_order": 2}, desk, live_read="show"))).results[0]
    assert (res.outcome, res.stage, res.error_msg, res.attempts) == (
        Outcome.FAILED,
        "read",
        "connection reset",
        0,
    )


async def test_a_summary_row_is_completed_with_show_before_it_is_compared() -> None:
    desk = Desk({"a": {"asset_order": 1, "asset_name": "x"}}, a=["ok"])
    row = update("a", {"asset_order": 2}, desk, app_user_id="u1")
    real_fetch = desk.fetch

    async def summary_fetch(
        asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> dict[str, Answer]:
        found = await real_fetch(asset_ids, app_user_ids)
        return {k: Answer({"asset_order": v.raw["asset_order"]}) for k, v in found.items()}

    desk.fetch = summary_fetch  # type: ignore[method-assign]
    result = await apply(desk, row)
    assert desk.sent() == [("list", ["a"], {"a": "u1"}), ("show", "a", "u1"), ("put", "a", "u1")]
    assert result.results[0].outcome is Outcome.UPDATED
    assert result.reads == ReadCounts(fresh_lists=1, fresh_assets=1, fresh_shows=1)


async def test_a_failed_batch_read_fails_its_writer_and_the_next_write_reads_again() -> None:
    desk = Desk({k: {"asset_order": 1} for k in "sab"}, s=["ok"], a=["ok"], b=["ok"])
    desk.fetch_errors.append(api_error(500, "MSS.00000001", "list broke"))
    result = await apply(
        desk,
        update("s", {"asset_order": 2}, desk, live_read="show"),
        update("a", {"asset_order": 2}, desk),
        update("b", {"asset_order": 2}, desk),
        parallelism=2,
    )
    lists = [c[1] for c in desk.calls if c[0] == "list"]
    assert lists == [["a", "b"], ["b"]]
    s, a, b = result.results
    assert (s.outcome, b.outcome) == (Outcome.UPDATED, Outcome.UPDATED)
    assert (a.asset_id, a.name, a.outcome, a.stage) == ("a", "n-a", Outcome.FAILED, "read")
    assert (a.status, a.error_code, a.error_msg, a.request_id) == (
        500,
        "MSS.00000001",
        "list broke",
        "req-9",
    )
    assert a.attempts == 0 and ("put", "a", None) not in desk.calls


async def test_failed_read_aheads_leave_no_error_unreported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A read ahead that failed is handed to its writes; asyncio must not also print it (as
    "Task exception was never retrieved" or a broken callback) at the end of the run."""
    desk = Desk({k: {"asset_order": 1} for k in "ab"}, a=["ok"], b=["ok"])
    desk.fetch_errors.append(api_error(500, "MSS.00000001", "list broke"))
    gc.collect()  # what earlier tests left behind is not this run's
    caplog.set_level(logging.DEBUG, "asyncio")
    caplog.clear()
    result = await apply(
        desk, update("a", {"asset_order": 2}, desk), update("b", {"asset_order": 2}, desk)
    )
    assert [r.stage for r in result.results] == ["read", "read"]
    gc.collect()
    await asyncio.sleep(0)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


async def test_a_read_failure_without_details_is_reported_by_its_text() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["ok"])
    desk.fetch_errors.append(ReconcilerError("the list could not be read"))
    result = await apply(desk, update("a", {"asset_order": 2}, desk))
    res = result.results[0]
    assert (res.outcome, res.stage, res.error_msg) == (
        Outcome.FAILED,
        "read",
        "the list could not be read",
    )
    assert (res.status, res.error_code, res.request_id) == (None, None, None)


async def test_a_stop_while_reading_ahead_waits_for_the_read_and_starts_nothing() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["ok"])
    gate = asyncio.Event()
    real_fetch = desk.fetch

    async def slow_fetch(
        asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> dict[str, Answer]:
        await gate.wait()
        return await real_fetch(asset_ids, app_user_ids)

    desk.fetch = slow_fetch  # type: ignore[method-assign]
    cancel = asyncio.Event()
    task = asyncio.create_task(apply(desk, update("a", {"asset_order": 2}, desk), cancel=cancel))
    for _ in range(5):
        await asyncio.sleep(0)
    cancel.set()
    await asyncio.sleep(0.02)
    assert not task.done()  # the read already asked for is waited for, not abandoned
    gate.set()
    result = await task
    assert result.results[0].outcome is Outcome.NOT_STARTED and result.interrupted
    assert [c[0] for c in desk.calls] == ["list"]


# --- retries: reads around them, the budget, the waits --------------------------------------


async def test_each_retry_of_a_show_row_reads_it_with_show() -> None:
    desk = Desk({"s": {"asset_order": 1}}, s=["refused", "refused", "ok"])
    result = await apply(
        desk, update("s", {"asset_order": 2}, desk, app_user_id="u1", live_read="show")
    )
    assert desk.sent() == [("show", "s", "u1"), ("put", "s", "u1")] * 3
    assert result.reads == ReadCounts(fresh_shows=1, retry_reads=2)
    assert result.results[0].attempts == 3


async def test_each_retry_of_a_listed_row_reads_it_alone() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["refused", "refused", "ok"])
    result = await apply(desk, update("a", {"asset_order": 2}, desk, app_user_id="u1"))
    assert desk.sent() == [("list", ["a"], {"a": "u1"}), ("put", "a", "u1")] * 3
    assert result.reads == ReadCounts(fresh_lists=1, fresh_assets=1, retry_reads=2)


async def test_an_asset_deleted_before_a_retry_is_changed_not_sent() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["refused", "ok"])
    real_slot = desk.write_slot

    async def slot(*, retry: bool = False) -> None:
        if any(c[0] == "put" for c in desk.calls):
            desk.assets.pop("a", None)
        await real_slot(retry=retry)

    desk.write_slot = slot  # type: ignore[method-assign]
    result = await apply(desk, update("a", {"asset_order": 2}, desk))
    res = result.results[0]
    assert (res.outcome, res.gone, res.attempts) == (Outcome.CHANGED, True, 1)
    assert desk.scripts["a"] == ["ok"]


async def test_the_pacer_is_told_which_turns_follow_a_429() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["429", "refused", "ok"])
    await apply(desk, update("a", {"asset_order": 2}, desk))
    assert [c[1] for c in desk.calls if c[0] == "slot"] == [False, True, False]


async def test_429s_are_waited_out_up_to_the_policy_limit() -> None:
    policy = RetryPolicy(max_throttled=2, throttle_delay=(0.001, 0.001))
    desk = Desk({"a": {"asset_order": 1}}, a=["429", "429", "ok"])
    desk.retry = policy
    assert (await apply(desk, update("a", {"asset_order": 2}, desk))).results[0].attempts == 3
    desk = Desk({"a": {"asset_order": 1}}, a=["429", "429", "429", "ok"])
    desk.retry = policy
    res = (await apply(desk, update("a", {"asset_order": 2}, desk))).results[0]
    assert (res.outcome, res.status, res.attempts) == (Outcome.FAILED, 429, 3)
    assert desk.scripts["a"] == ["ok"]


class GrowingBackoff(RetryPolicy):
    """A back-off that grows by a known step per failure (the real one is random)."""

    def backoff(self, attempt: int) -> float:
        return 0.01 * (attempt + 1)


async def test_back_offs_grow_with_each_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interrupts, "remaining", lambda: 0.015)
    desk = Desk({"a": {"asset_order": 1}}, a=["refused", "refused", "ok"])
    desk.retry = GrowingBackoff(max_retries=5)
    res = (await apply(desk, update("a", {"asset_order": 2}, desk))).results[0]
    # 0.01 s after the first failure fits before the deadline; 0.02 s after the second does not.
    assert (res.outcome, res.attempts, res.waiting, res.deadline) == (
        Outcome.NOT_SENT,
        2,
        0.02,
        True,
    )
    assert (res.asset_id, res.name) == ("a", "n-a")


async def test_a_wait_that_ends_exactly_at_the_deadline_is_not_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(interrupts, "remaining", lambda: 0.5)
    desk = Desk({"a": {"asset_order": 1}}, a=["429", "ok"])
    desk.retry = RetryPolicy(throttle_delay=(0.5, 0.5))
    res = (await apply(desk, update("a", {"asset_order": 2}, desk))).results[0]
    assert (res.outcome, res.waiting, res.deadline, res.attempts) == (
        Outcome.NOT_SENT,
        0.5,
        True,
        1,
    )
    assert desk.scripts["a"] == ["ok"]


async def test_no_attempt_starts_past_the_total_time() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["429", "ok"])
    desk.retry = RetryPolicy(total_time=0.1, throttle_delay=(0.2, 0.2))
    res = (await apply(desk, update("a", {"asset_order": 2}, desk))).results[0]
    assert (res.outcome, res.status, res.attempts) == (Outcome.FAILED, 429, 1)
    assert desk.scripts["a"] == ["ok"]


async def test_a_failure_of_no_kind_is_tallied_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["bare", "ok"])
    caplog.set_level(logging.DEBUG, LOGGER)
    result = await apply(desk, update("a", {"asset_order": 2}, desk))
    assert result.results[0].outcome is Outcome.UPDATED
    assert desk.tally.retried == {"error": 1}
    assert f"retrying the PUT of a in 0.00s: {error(503)}" in messages(caplog)


async def test_a_stop_during_a_back_off_reports_the_wait_cut_short() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["429", "ok"])
    desk.retry = RetryPolicy(throttle_delay=(0.5, 0.5))
    cancel = asyncio.Event()
    task = asyncio.create_task(apply(desk, update("a", {"asset_order": 2}, desk), cancel=cancel))
    while ("put", "a", None) not in desk.calls:
        await asyncio.sleep(0.001)
    cancel.set()
    res = (await task).results[0]
    assert (res.asset_id, res.name, res.outcome) == ("a", "n-a", Outcome.NOT_SENT)
    assert (res.waiting, res.deadline, res.attempts) == (0.5, False, 1)


# --- lost answers ----------------------------------------------------------------------------


async def test_a_lost_answer_that_landed_records_the_write_only_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["lost"])
    state = Recorder()
    caplog.set_level(logging.WARNING, LOGGER)
    row = update("a", {"asset_order": 2}, desk, write_only_fingerprint="fp")
    result = await asyncio.wait_for(
        apply_plan(Plan([row], project_id="proj"), desk, state=state), 5
    )
    res = result.results[0]
    assert (res.asset_id, res.name, res.outcome, res.lost) == (
        "a",
        "n-a",
        Outcome.ANSWER_LOST,
        "timeout",
    )
    assert state.records == [("proj", "a", "fp")]
    assert messages(caplog) == [
        "asset a: the PUT's answer was lost (timeout); reading back shows it landed"
    ]


async def test_a_lost_answer_of_no_kind_is_called_no_answer() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["lost"])
    desk.lost_kind = ""
    res = (await apply(desk, update("a", {"asset_order": 2}, desk))).results[0]
    assert (res.outcome, res.lost) == (Outcome.ANSWER_LOST, "no answer")


async def test_a_lost_answer_whose_read_back_fails_is_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    desk = Desk({"s": {"asset_order": 1}}, s=["lost", "ok"])
    row = update("s", {"asset_order": 2}, desk, live_read="show")
    read_back_error = api_error(500, "MSS.00000001", "show broke")
    real_show = desk.show

    async def show(asset_id: str, app_user_id: str | None = None) -> Answer:
        if any(c[0] == "put" for c in desk.calls):
            raise read_back_error
        return await real_show(asset_id, app_user_id)

    desk.show = show  # type: ignore[method-assign]
    desk.lost_error = api_error(504, "", "gateway timeout")
    caplog.set_level(logging.WARNING, LOGGER)
    res = (await apply(desk, row)).results[0]
    assert (res.asset_id, res.name, res.outcome, res.attempts) == ("s", "n-s", Outcome.UNKNOWN, 1)
    assert (res.status, res.error_msg, res.lost) == (504, "gateway timeout", "timeout")
    assert desk.scripts["s"] == ["ok"]
    assert messages(caplog) == [
        f"asset s: reading back after a lost answer failed: {read_back_error}",
        "asset s: outcome unknown after timeout",
    ]


# --- answers ---------------------------------------------------------------------------------


async def test_an_answer_carries_its_request_id() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["ok"])
    res = (await apply(desk, update("a", {"asset_order": 2}, desk))).results[0]
    assert (res.outcome, res.request_id) == (Outcome.UPDATED, "rid-a")


async def test_an_empty_answer_is_read_back() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["none"])
    result = await apply(desk, update("a", {"asset_order": 2}, desk, app_user_id="u1"))
    assert result.results[0].outcome is Outcome.UPDATED
    assert desk.sent()[-1] == ("show", "a", "u1")


async def test_short_answers_are_read_back_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    desk = Desk({"a": {"asset_order": 1}, "b": {"asset_order": 1}}, a=["short"], b=["short"])
    caplog.set_level(logging.DEBUG, LOGGER)
    result = await apply(
        desk,
        update("a", {"asset_order": 2}, desk, app_user_id="u1"),
        update("b", {"asset_order": 2}, desk, app_user_id="u2"),
    )
    assert [r.outcome for r in result.results] == [Outcome.UPDATED, Outcome.UPDATED]
    assert [r.request_id for r in result.results] == ["rid-a", "rid-b"]
    assert result.reads.read_backs == 2
    assert ("show", "a", "u1") in desk.calls and ("show", "b", "u2") in desk.calls
    backs = [m for m in messages(caplog) if "reading it back" in m]
    assert len(backs) == 2
    assert backs[0].startswith("asset a: the answer does not show [") and "asset_order" in backs[0]


async def test_a_failed_read_back_is_reported_at_its_stage() -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["short"])
    desk.show_errors["a"] = [api_error(503, "MSS.00000002", "busy")]
    res = (await apply(desk, update("a", {"asset_order": 2}, desk))).results[0]
    assert (res.asset_id, res.name, res.outcome, res.stage) == (
        "a",
        "n-a",
        Outcome.FAILED,
        "read-back",
    )
    assert (res.status, res.error_code, res.error_msg, res.request_id) == (
        503,
        "MSS.00000002",
        "busy",
        "req-9",
    )


async def test_values_not_taken_are_named(caplog: pytest.LogCaptureFixture) -> None:
    desk = Desk({"a": {"asset_order": 1, "asset_name": "x"}}, a=["ignored"])
    caplog.set_level(logging.WARNING, LOGGER)
    res = (await apply(desk, update("a", {"asset_order": 2, "asset_name": "y"}, desk))).results[0]
    assert (res.asset_id, res.name, res.outcome, res.request_id) == (
        "a",
        "n-a",
        Outcome.NOT_CONVERGED,
        "rid-a",
    )
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.getMessage() == (
        "asset a did not converge: the service did not take asset_order, asset_name"
    )
    assert (record.asset_id, record.request_id) == ("a", "rid-a")  # type: ignore[attr-defined]


async def test_an_answer_about_another_asset_keeps_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    desk = Desk({"a": {"asset_order": 1}}, a=["other"])
    caplog.set_level(logging.WARNING, LOGGER)
    res = (await apply(desk, update("a", {"asset_order": 2}, desk))).results[0]
    assert (res.asset_id, res.name, res.outcome, res.wrong_asset, res.request_id) == (
        "a",
        "n-a",
        Outcome.FAILED,
        "someone-else",
        "rid-a",
    )
    assert messages(caplog) == ["the PUT of a was answered with asset someone-else"]


async def test_a_write_only_record_that_fails_is_a_warning_not_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def record(self, project_id: str, asset_id: str, fingerprint: str) -> None:
            raise ReconcilerError("state file is read-only")

    desk = Desk({"a": {"asset_order": 1}}, a=["ok"])
    caplog.set_level(logging.WARNING, LOGGER)
    row = update("a", {"asset_order": 2}, desk, write_only_fingerprint="fp")
    result = await asyncio.wait_for(
        apply_plan(Plan([row], project_id="proj"), desk, state=Broken()), 5
    )
    assert result.results[0].outcome is Outcome.UPDATED
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.getMessage() == (
        "asset a updated, but its write-only record failed: state file is read-only"
    )
    assert (record.asset_id, record.request_id) == ("a", "rid-a")  # type: ignore[attr-defined]


# --- find_stale ------------------------------------------------------------------------------


def _fp(raw: Mapping[str, Any]) -> str:
    return repr(sorted(raw.items()))


async def test_find_stale_reads_each_row_the_way_it_was_planned() -> None:
    desk = Desk({"a": {"x": 1}, "s": {"x": 2}, "t": {"x": 3}})
    plan = Plan(
        [
            AssetPlan(
                asset_id="a",
                action=Action.UPDATE,
                name="n-a",
                body={"x": 9},
                app_user_id="u1",
                live_fingerprint=_fp({"x": 1}),
            ),
            AssetPlan(
                asset_id="s",
                action=Action.NOOP,
                name="n-s",
                app_user_id="u2",
                live_read="show",
                live_fingerprint=_fp({"x": 2}),
            ),
            AssetPlan(
                asset_id="t",
                action=Action.UPDATE,
                name="n-t",
                body={"x": 9},
                live_read="show",
                live_fingerprint=_fp({"x": 3}),
            ),
        ]
    )
    assert await find_stale(plan, desk, _fp) == []
    assert desk.calls == [
        ("list", ["a"], {"a": "u1"}),
        ("show", "s", "u2"),
        ("show", "t", None),
    ]
    desk.assets["s"]["x"] = 20
    del desk.assets["t"]
    stale = await find_stale(plan, desk, _fp)
    assert [(s.asset_id, s.name, s.gone) for s in stale] == [
        ("s", "n-s", False),
        ("t", "n-t", True),
    ]


async def test_find_stale_reports_the_error_inside_a_group_of_page_reads() -> None:
    desk = Desk({"a": {"x": 1}})
    broken = api_error(500, "MSS.00000001", "page 3 broke")
    desk.fetch_errors.append(BaseExceptionGroup("pages", [broken]))
    plan = Plan([AssetPlan(asset_id="a", action=Action.UPDATE, name="n-a", body={"x": 9})])
    with pytest.raises(ApiError) as raised:
        await find_stale(plan, desk, _fp)
    assert raised.value is broken
