"""The apply core over a recording test double: ordering, limits, failures, Ctrl-C, verification.

End-to-end behaviour over real sockets is in tests/e2e/test_apply.py; these pin apply's rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from reconciler.api.client import PutFailure, RetryPolicy
from reconciler.api.errors import ApiError, AssetNotFound, ServiceUnreachable
from reconciler.api.retries import RetryTally
from reconciler.engine.apply import ApplyResult, AssetResult, Outcome, verify
from reconciler.engine.plan import Action, AssetPlan, Plan
from reconciler.live.apply import apply_plan, find_stale
from reconciler.render.apply_text import (
    mismatch_line,
    result_line,
    stale_line,
    stale_message,
    summary,
)


@dataclass
class Updated:
    raw: dict[str, Any]
    request_id: str | None = "rid-1"


@dataclass
class Recorder:
    records: list[tuple[str, str, str]] = field(default_factory=list)

    def record(self, project_id: str, asset_id: str, fingerprint: str) -> None:
        self.records.append((project_id, asset_id, fingerprint))


class FakeService:
    """Applies bodies to a dict of assets; can fail, ignore fields, or hold requests."""

    def __init__(self, assets: dict[str, dict[str, Any]]) -> None:
        self.assets = assets
        self.sent: list[tuple[str, dict[str, Any], str | None]] = []
        self.fail: dict[str, ApiError] = {}
        self.ignore: set[str] = set()
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = asyncio.Event()
        self.fetched: list[list[str]] = []
        self.shown: list[str] = []
        self.tally = RetryTally()

    retry = RetryPolicy(max_retries=2, backoff_base=0.001, backoff_cap=0.001)

    async def write_slot(self, *, retry: bool = False) -> None:
        await asyncio.sleep(0)

    async def put_once(
        self, asset_id: str, body: Mapping[str, Any], app_user_id: str | None = None
    ) -> Updated | PutFailure:
        """One attempt through ``update`` (which tests replace); a raised error is refused."""
        try:
            return await self.update(asset_id, body, app_user_id)
        except ApiError as exc:
            return PutFailure(exc, retryable=False, maybe_applied=False)

    async def update(
        self, asset_id: str, body: Mapping[str, Any], app_user_id: str | None = None
    ) -> Updated:
        self.sent.append((asset_id, dict(body), app_user_id))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.started.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(0)
            if asset_id in self.fail:
                raise self.fail[asset_id]
            live = self.assets[asset_id]
            live.update({k: v for k, v in body.items() if k not in self.ignore})
            return Updated(dict(live))
        finally:
            self.in_flight -= 1

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> dict[str, Updated]:
        self.fetched.append(list(asset_ids))
        return {a: Updated(dict(self.assets[a])) for a in asset_ids if a in self.assets}

    async def show(self, asset_id: str, app_user_id: str | None = None) -> Updated:
        self.shown.append(asset_id)
        if asset_id not in self.assets:
            raise not_found(asset_id)
        return Updated(dict(self.assets[asset_id]))


def planned(plan: Plan, service: FakeService) -> Plan:
    """The plan as the planner makes it: each row remembers the live asset it was made from."""
    for item in plan.assets:
        if item.live is None and item.asset_id in service.assets:
            item.live = dict(service.assets[item.asset_id])
    return plan


def row(asset_id: str, body: dict[str, Any] | None, **kw: Any) -> AssetPlan:
    action = kw.pop("action", Action.UPDATE if body is not None else Action.NOOP)
    return AssetPlan(asset_id=asset_id, action=action, name=f"n-{asset_id}", body=body, **kw)


def not_found(asset_id: str) -> AssetNotFound:
    """What the client raises for ShowAsset's 400 ``MSS.10001001``."""
    return AssetNotFound(
        method="GET",
        path=f"/v1/p/digital-assets/{asset_id}",
        status=400,
        error_code="MSS.10001001",
        error_msg="Asset not found",
        request_id="req-9",
    )


def api_error(status: int, code: str, msg: str) -> ApiError:
    return ApiError(
        method="PUT",
        path="/v1/p/digital-assets/x",
        status=status,
        error_code=code,
        error_msg=msg,
        request_id="req-9",
    )


async def test_sends_each_planned_body_once_and_nothing_for_noop_or_error_rows() -> None:
    service = FakeService({"a": {"asset_name": "old"}, "b": {}, "c": {}, "d": {}})
    plan = Plan(
        [
            row("a", {"asset_name": "new"}, app_user_id="u1"),
            row("b", None),
            row("c", None, action=Action.ERROR, errors=["asset not found"]),
            row("d", None, action=Action.BLOCKED, live_state="BLOCK"),
        ],
        project_id="p",
    )
    result = await apply_plan(planned(plan, service), service)
    assert service.sent == [("a", {"asset_name": "new"}, "u1")]
    assert [r.outcome for r in result.results] == [
        Outcome.UPDATED,
        Outcome.NOT_APPLIED,
        Outcome.NOT_APPLIED,
    ]
    assert result.exit_code == 1  # error and blocked rows fail the run after the rest applied
    assert summary(result) == "Apply failed: 1 changed, 0 failed, 2 not applied (see the plan)."
    assert "blocked" in result_line(result.results[2]) and "BLOCK" in result_line(result.results[2])


async def test_partial_failure_keeps_going_and_reports_code_message_request_id() -> None:
    service = FakeService({f"a{i}": {} for i in range(5)})
    service.fail["a2"] = api_error(400, "MSS.10000003", "Parameter validation abnormal")
    service.fail["a4"] = ServiceUnreachable(method="PUT", path="/x", hint="is it running?")
    plan = Plan([row(f"a{i}", {"asset_order": i}) for i in range(5)], project_id="p")
    seen: list[AssetResult] = []
    result = await apply_plan(planned(plan, service), service, parallelism=2, on_result=seen.append)
    assert len(service.sent) == 5 and len(seen) == 5
    assert (result.changed, result.failed, result.exit_code) == (3, 2, 1)
    assert summary(result) == "Apply failed: 3 changed, 2 failed."
    line = result_line(result.results[2])
    assert line.startswith("a2: FAILED 400 MSS.10000003 Parameter validation abnormal")
    assert "(request id req-9)" in line
    assert "is it running?" in result_line(result.results[4])


async def test_all_good_summary_and_exit_zero() -> None:
    service = FakeService({"a": {}, "b": {}})
    plan = Plan([row("a", {"tags": ["X"]}), row("b", {"tags": []})], project_id="p")
    result = await apply_plan(planned(plan, service), service)
    assert summary(result) == "Apply complete! 2 changed, 0 failed."
    assert result.exit_code == 0
    assert result_line(result.results[0]) == "a: updated (n-a)"


async def test_parallelism_bounds_requests_in_flight() -> None:
    service = FakeService({f"a{i}": {} for i in range(12)})
    service.gate = asyncio.Event()
    plan = Plan([row(f"a{i}", {"asset_order": i}) for i in range(12)], project_id="p")
    task = asyncio.create_task(apply_plan(planned(plan, service), service, parallelism=3))
    await service.started.wait()
    for _ in range(5):
        await asyncio.sleep(0)
    assert service.in_flight == 3
    service.gate.set()
    result = await task
    assert service.max_in_flight == 3 and result.changed == 12


async def test_cancel_lets_in_flight_finish_and_starts_nothing_new() -> None:
    service = FakeService({f"a{i}": {} for i in range(10)})
    service.gate = asyncio.Event()
    cancel = asyncio.Event()
    plan = Plan([row(f"a{i}", {"asset_order": i}) for i in range(10)], project_id="p")
    task = asyncio.create_task(
        apply_plan(planned(plan, service), service, parallelism=2, cancel=cancel)
    )
    await service.started.wait()
    cancel.set()
    service.gate.set()
    result = await task
    assert len(service.sent) == 2
    assert result.interrupted and result.exit_code == 130
    assert (result.changed, result.not_started) == (2, 8)
    assert summary(result) == "Apply interrupted: 2 changed, 0 failed, 8 not started."


async def test_write_only_fingerprint_recorded_only_after_a_successful_put() -> None:
    service = FakeService({"a": {}, "b": {}, "c": {}})
    service.fail["b"] = api_error(500, "MSS.00000001", "boom")
    state = Recorder()
    plan = Plan(
        [
            row("a", {"shared_config": {"shared_type": "PRIVATE"}}, write_only_fingerprint="f-a"),
            row("b", {"review_config": {"no_need_review": True}}, write_only_fingerprint="f-b"),
            row("c", {"asset_name": "x"}),
        ],
        project_id="proj",
    )
    result = await apply_plan(planned(plan, service), service, state=state)
    assert state.records == [("proj", "a", "f-a")]
    assert result.results[0].outcome is Outcome.UPDATED  # write-only fields are not verified


async def test_ignored_field_is_reported_not_converged_and_fails_the_run() -> None:
    service = FakeService({"a": {"asset_name": "old", "asset_order": 1}})
    service.ignore.add("asset_order")
    plan = Plan([row("a", {"asset_name": "new", "asset_order": 7})], project_id="p")
    result = await apply_plan(planned(plan, service), service)
    res = result.results[0]
    assert res.outcome is Outcome.NOT_CONVERGED
    assert [mismatch_line(m) for m in res.mismatches] == ["asset_order = 7 (service has 1)"]
    assert "NOT CONVERGED" in result_line(res) and "asset_order" in result_line(res)
    assert result.exit_code == 1 and summary(result) == "Apply failed: 0 changed, 1 failed."


async def test_parallelism_below_one_is_a_clear_error() -> None:
    from reconciler.errors import ReconcilerError

    with pytest.raises(ReconcilerError, match="parallelism"):
        await apply_plan(Plan([]), FakeService({}), parallelism=0)


def test_empty_result_is_complete() -> None:
    assert summary(ApplyResult()) == "Apply complete! 0 changed, 0 failed."


# --- verify: the response shows every planned field ------------------------------------------


def test_verify_accepts_equivalent_values() -> None:
    body = {
        "tags": ["B", "A"],
        "asset_description": "",
        "asset_order": 1,
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": True, "device_names": []}},
        "auto_operation_config": [{"operation": "BLOCK", "operation_time": "2025-01-10T00:00:00Z"}],
        "shared_config": {"shared_type": "SHARED"},  # write-only: never comes back
        "review_config": {"no_need_review": True},
    }
    live = {
        "tags": ["A", "B"],
        "asset_order": 1.0,
        "asset_extra_meta": {
            "human_model_2d_meta": {"support_live": True, "model_version": "V3"},
            "image_meta": {"width": 1},
        },
        "auto_operation_config": [
            {"operation": "BLOCK", "operation_time": "2025-01-10T08:00:00+08:00"}
        ],
    }
    assert verify(body, live) == []


def test_verify_reports_each_field_not_taken() -> None:
    body = {
        "tags": ["A", "B"],
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": True}},
        "auto_operation_config": [{"operation": "BLOCK"}],
        "asset_state": "ACTIVED",
    }
    live = {
        "tags": ["A"],
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": 1}},
        "auto_operation_config": [],
        "asset_state": "UNACTIVED",
    }
    problems = verify(body, live)
    assert [p.path for p in problems] == [
        "tags",
        "asset_extra_meta.human_model_2d_meta.support_live",
        "auto_operation_config",
        "asset_state",
    ]


def test_verify_system_property_operations() -> None:
    ops = [
        {"action": "ADD", "key": "BACKGROUND_IMG", "value": "Yes"},
        {"action": "DELETE", "key": "MATERIAL_IMG", "value": "Yes"},
    ]
    good = {"system_properties": [{"key": "BACKGROUND_IMG", "value": "Yes"}]}
    assert verify({"system_properties": ops}, good) == []
    bad = {
        "system_properties": [
            {"key": "BACKGROUND_IMG", "value": "No"},
            {"key": "MATERIAL_IMG", "value": "Yes"},
        ]
    }
    problems = verify({"system_properties": ops}, bad)
    assert len(problems) == 2
    assert [mismatch_line(p) for p in problems] == [
        'system_properties.BACKGROUND_IMG = "Yes" (service has "No")',
        'system_properties.MATERIAL_IMG removal (service still has "Yes")',
    ]


# --- staleness -----------------------------------------------------------------------------


def _fp(raw: Mapping[str, Any]) -> str:
    return repr(sorted(raw.items()))


async def test_find_stale_lists_changed_and_vanished_assets_only() -> None:
    service = FakeService({"a": {"x": 1}, "b": {"x": 2}, "c": {"x": 3}, "gone": {"x": 4}})
    plan = Plan(
        [
            row("a", {"x": 9}, live_fingerprint=_fp({"x": 1})),
            row("b", None, live_fingerprint=_fp({"x": 2})),
            row("c", {"x": 9}, live_fingerprint=_fp({"x": 3})),
            row("gone", {"x": 9}, live_fingerprint=_fp({"x": 4})),
            row("e", None, action=Action.ERROR),  # not applied: not checked
        ]
    )
    assert await find_stale(plan, service, _fp) == []
    service.assets["c"]["x"] = 30
    del service.assets["gone"]
    stale = await find_stale(plan, service, _fp)
    assert [stale_line(s) for s in stale] == [
        "c (n-c): changed since the plan was made",
        "gone (n-gone): no longer exists",
    ]
    message = stale_message(stale)
    assert "2 assets changed" in message and "nothing was sent" in message
    assert "c (n-c): changed" in message


async def test_fresh_reads_cover_the_next_writes_and_a_changed_asset_is_not_sent() -> None:
    service = FakeService({f"a{i}": {"asset_order": 0} for i in range(7)})
    plan = planned(
        Plan([row(f"a{i}", {"asset_order": i + 1}) for i in range(7)], project_id="p"), service
    )
    service.assets["a5"]["asset_name"] = "edited in the console"  # after the plan was made
    result = await apply_plan(plan, service, parallelism=3)
    # One list request per batch of writers: each asset read once, right before its batch.
    assert service.fetched == [["a0", "a1", "a2"], ["a3", "a4", "a5"], ["a6"]]
    assert sorted(a for a, _, _ in service.sent) == ["a0", "a1", "a2", "a3", "a4", "a6"]
    changed = result.results[5]
    assert changed.outcome is Outcome.CHANGED and changed.changed == ("asset_name",)
    assert "CHANGED SINCE PLAN" in result_line(changed) and "asset_name changed" in (
        result_line(changed)
    )
    assert result.exit_code == 1
    assert summary(result) == "Apply failed: 6 changed, 0 failed, 1 changed since plan (not sent)."
    assert (result.reads.fresh_lists, result.reads.fresh_assets) == (3, 7)


async def test_an_answer_that_does_not_show_the_values_is_read_back() -> None:
    service = FakeService({"a": {"asset_order": 1}})
    service.ignore.add("asset_order")  # the answer keeps the old value...
    plan = planned(Plan([row("a", {"asset_order": 7})], project_id="p"), service)

    async def update(asset_id: str, body: Any, app_user_id: str | None = None) -> Updated:
        service.assets[asset_id].update(body)  # ...but the service stored the new one
        return Updated({"asset_id": asset_id})

    service.update = update  # type: ignore[method-assign]
    result = await apply_plan(plan, service)
    assert result.results[0].outcome is Outcome.UPDATED
    assert service.shown == ["a"] and result.reads.read_backs == 1


async def test_an_answer_about_another_asset_is_a_failure() -> None:
    service = FakeService({"a": {}})
    plan = planned(Plan([row("a", {"asset_order": 7})], project_id="p"), service)

    async def update(asset_id: str, body: Any, app_user_id: str | None = None) -> Updated:
        return Updated({"asset_id": "someone-else", "asset_order": 7})

    service.update = update  # type: ignore[method-assign]
    result = await apply_plan(plan, service)
    res = result.results[0]
    assert res.outcome is Outcome.FAILED and res.wrong_asset == "someone-else"
    assert "answered the PUT with asset someone-else" in result_line(res)
