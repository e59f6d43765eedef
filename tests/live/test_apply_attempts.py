"""The attempts of one PUT (design.md 3.11) over a scripted test double: each attempt after a
fresh read, lost answers resolved by reading back, the retry budget, stops and the deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from reconciler import interrupts
from reconciler.api.client import PutFailure, RetryPolicy
from reconciler.api.errors import ApiError, ServiceError, Throttled
from reconciler.api.retries import RetryTally
from reconciler.engine.apply import Landed, Outcome, landed
from reconciler.engine.plan import Action, AssetPlan, Plan
from reconciler.live.apply import apply_plan
from reconciler.render.apply_text import result_line, summary


@dataclass
class Answer:
    raw: dict[str, Any]
    request_id: str | None = "rid"


def error(status: int) -> ApiError:
    cls = Throttled if status == 429 else ServiceError
    return cls(method="PUT", path="/v1/p/digital-assets/a", status=status)


# What an attempt does: "ok" (stored, answered), "lost" (stored, no answer), "refused" (a 5xx
# with the service's error body), "429", "gone-proxy" (a 504 without a body, not stored),
# "fatal" (a 400).
Script = list[str]


class Service:
    """A service whose PUT attempts follow a script; every call is logged in order."""

    def __init__(self, asset: dict[str, Any], script: Script) -> None:
        self.asset = asset
        self.script = script
        self.calls: list[str] = []
        self.retry = RetryPolicy(
            max_retries=2, backoff_base=0.001, backoff_cap=0.001, throttle_delay=(0.0, 0.0)
        )
        self.tally = RetryTally()
        self.edit_after_put: dict[str, Any] | None = None

    async def write_slot(self, *, retry: bool = False) -> None:
        await asyncio.sleep(0)

    async def put_once(
        self, asset_id: str, body: Mapping[str, Any], app_user_id: str | None = None
    ) -> Answer | PutFailure:
        step = self.script.pop(0)
        self.calls.append(f"put:{step}")
        if step in ("ok", "lost"):
            self.asset.update(body)
            if self.edit_after_put:
                self.asset.update(self.edit_after_put)
        if step == "ok":
            return Answer(dict(self.asset))
        if step == "lost":
            return PutFailure(error(504), retryable=True, maybe_applied=True, kind="timeout")
        if step == "gone-proxy":
            return PutFailure(error(504), retryable=True, maybe_applied=True, kind="HTTP 504")
        if step == "refused":
            return PutFailure(error(503), retryable=True, maybe_applied=False, kind="HTTP 503")
        if step == "429":
            wait = self.retry.throttle(None)
            return PutFailure(error(429), True, False, wait=wait, throttled=True)
        return PutFailure(error(400), retryable=False, maybe_applied=False)

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> dict[str, Answer]:
        self.calls.append("read")
        return {"a": Answer(dict(self.asset))}

    async def show(self, asset_id: str, app_user_id: str | None = None) -> Answer:
        self.calls.append("show")
        return Answer(dict(self.asset))


def plan_for(service: Service, body: dict[str, Any]) -> Plan:
    row = AssetPlan(asset_id="a", action=Action.UPDATE, name="A", body=body)
    row.live = dict(service.asset)
    return Plan([row], project_id="p")


async def run(service: Service, body: dict[str, Any] | None = None, **kw: Any) -> Any:
    result = await apply_plan(plan_for(service, body or {"asset_order": 7}), service, **kw)
    return result


async def test_every_attempt_follows_its_own_read() -> None:
    service = Service({"asset_order": 1}, ["429", "refused", "ok"])
    result = await run(service)
    assert service.calls == ["read", "put:429", "read", "put:refused", "read", "put:ok"]
    assert result.results[0].outcome is Outcome.UPDATED and result.results[0].attempts == 3
    assert service.tally.retried == {"HTTP 503": 1}  # the 429 is counted by the client


async def test_a_lost_answer_that_landed_is_not_sent_again() -> None:
    service = Service({"asset_order": 1}, ["lost"])
    result = await run(service)
    assert service.calls == ["read", "put:lost", "read"]
    res = result.results[0]
    assert (res.outcome, res.lost, res.attempts) == (Outcome.ANSWER_LOST, "timeout", 1)
    assert result.changed == 1 and result.failed == 0 and result.exit_code == 0
    assert result.reads.retry_reads == 1


async def test_a_lost_answer_that_did_not_land_is_retried_on_the_read_back() -> None:
    service = Service({"asset_order": 1}, ["gone-proxy", "ok"])
    result = await run(service)
    # The read back showed the planned-from state and is recent: it is the retry's read.
    assert service.calls == ["read", "put:gone-proxy", "read", "put:ok"]
    assert result.results[0].outcome is Outcome.UPDATED


async def test_a_lost_answer_under_someone_elses_edit_is_unknown() -> None:
    service = Service({"asset_order": 1, "asset_name": "x"}, ["lost"])
    service.edit_after_put = {"asset_name": "edited"}
    service.asset["asset_order"] = 1
    result = await run(service, {"asset_order": 7, "asset_name": "y"})
    res = result.results[0]
    assert res.outcome is Outcome.UNKNOWN and result.exit_code == 1
    assert result.changed == 0 and result.failed == 0 and result.unknown == 1
    assert "OUTCOME UNKNOWN (A)" in result_line(res)
    assert "1 outcome unknown" in summary(result)


async def test_failures_use_up_the_budget_and_the_last_one_is_reported() -> None:
    service = Service({"asset_order": 1}, ["refused", "refused", "refused", "ok"])
    result = await run(service)
    res = result.results[0]
    assert (res.outcome, res.status, res.attempts) == (Outcome.FAILED, 503, 3)
    assert service.script == ["ok"]  # max_retries 2: three attempts, the fourth never sent


@pytest.mark.parametrize("failures", [1, 2])
async def test_a_put_retried_is_one_request_however_often(failures: int) -> None:
    service = Service({"asset_order": 1}, ["refused"] * failures + ["ok"])
    result = await run(service)
    assert result.results[0].outcome is Outcome.UPDATED
    assert service.tally.retried == {"HTTP 503": failures}
    assert service.tally.requests_retried == 1  # "retried 1 request N times"


async def test_429s_do_not_use_up_the_failure_budget() -> None:
    service = Service({"asset_order": 1}, ["429", "429", "429", "refused", "ok"])
    result = await run(service)
    assert result.results[0].outcome is Outcome.UPDATED and result.results[0].attempts == 5


async def test_a_refused_attempt_is_final() -> None:
    service = Service({"asset_order": 1}, ["fatal", "ok"])
    result = await run(service)
    assert result.results[0].outcome is Outcome.FAILED and service.script == ["ok"]


async def test_an_edit_during_the_wait_stops_the_retry() -> None:
    service = Service({"asset_order": 1, "asset_name": "x"}, ["429", "ok"])

    async def slot(*, retry: bool = False) -> None:
        if retry:
            service.asset["asset_name"] = "console"  # edited while the 429 was waited out
        await asyncio.sleep(0)

    service.write_slot = slot  # type: ignore[method-assign]
    result = await run(service)
    res = result.results[0]
    assert res.outcome is Outcome.CHANGED and res.changed == ("asset_name",)
    assert service.script == ["ok"] and service.asset["asset_order"] == 1


async def test_a_stop_during_a_back_off_sends_nothing_more() -> None:
    service = Service({"asset_order": 1}, ["429", "ok"])
    service.retry = RetryPolicy(throttle_delay=(30.0, 30.0))
    cancel = asyncio.Event()
    task = asyncio.create_task(run(service, cancel=cancel))
    while "put:429" not in service.calls:
        await asyncio.sleep(0.01)
    cancel.set()
    result = await asyncio.wait_for(task, 5)
    res = result.results[0]
    assert (res.outcome, res.attempts, res.deadline) == (Outcome.NOT_SENT, 1, False)
    assert service.script == ["ok"]
    assert result.not_sent == 1 and result.changed == 0


async def test_a_wait_past_the_deadline_is_not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interrupts, "remaining", lambda: 1.0)
    service = Service({"asset_order": 1}, ["429", "ok"])
    service.retry = RetryPolicy(throttle_delay=(5.0, 5.0))
    result = await asyncio.wait_for(run(service), 2)
    res = result.results[0]
    assert (res.outcome, res.waiting, res.deadline) == (Outcome.NOT_SENT, 5.0, True)
    assert "past the run's --timeout" in result_line(res)
    assert result.exit_code == 1


def test_landed_reads_the_asset_back() -> None:
    row = AssetPlan(asset_id="a", action=Action.UPDATE, name="A", body={"asset_order": 7})
    row.live = {"asset_order": 1, "asset_name": "x"}
    body = {"asset_order": 7}
    assert landed(row, body, {"asset_order": 7, "asset_name": "x"}) is Landed.YES
    assert landed(row, body, {"asset_order": 1, "asset_name": "x"}) is Landed.NO
    assert landed(row, body, {"asset_order": 1, "asset_name": "edited"}) is Landed.UNKNOWN
    assert landed(row, body, None) is Landed.UNKNOWN
    # Write-only values cannot be read back: their fate cannot be told.
    only_write_only = {"review_config": {"is_need_review": True}}
    assert landed(row, only_write_only, dict(row.live)) is Landed.UNKNOWN
