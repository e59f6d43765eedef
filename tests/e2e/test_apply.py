"""Apply end to end over real sockets: planner + client + apply engine against the emulator.

Every assertion about what was sent is read from the emulator's request log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.client import RetryPolicy
from reconciler.emulator import samples
from reconciler.emulator.testing import RunningEmulator, run_emulator
from reconciler.engine.apply import Outcome
from reconciler.engine.diff import Desired
from reconciler.engine.fingerprint import live_fingerprint
from reconciler.engine.plan import Action, Plan
from reconciler.live.apply import apply_plan, find_stale
from reconciler.live.plan import build_plan
from reconciler.render.apply_text import result_line, summary
from reconciler.state.sqlite import SqliteStore

pytestmark = pytest.mark.e2e

FAST_RETRY = RetryPolicy(
    max_retries=8, backoff_base=0.01, backoff_cap=0.05, throttle_delay=(0.01, 0.02)
)


def asset(i: int, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "asset_description": "live",
        "tags": ["NEWS", "FEMALE"],
        "asset_order": i,
        "asset_extra_meta": {"image_meta": {"codec": "png", "width": 1920, "height": 1080}},
    }
    return samples.image(i, **{**fields, **extra})


def desired(i: int, **spec: Any) -> Desired:
    return Desired(asset_id=asset(i)["asset_id"], desired=spec, source=f"m.yaml:{i}:1")


def put_log(emu: RunningEmulator) -> list[tuple[str, Any]]:
    """(asset_id, body) of every PUT the emulator received, in order."""
    return [
        (entry["path"].rsplit("/", 1)[1], entry["body"])
        for entry in emu.requests()
        if entry["method"] == "PUT"
    ]


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with run_emulator([asset(i) for i in range(6)]) as running:
        yield running


async def plan_for(emu: RunningEmulator, items: list[Desired], state: Any = None) -> Plan:
    async with emu.client(retry=FAST_RETRY) as client:
        return await build_plan(
            items,
            client,
            state=state,
            target_name="emu",
            project_id=emu.project_id,
            endpoint=emu.base_url,
        )


SPECS = [
    desired(0, asset_name="Renamed 0"),  # changes
    desired(1, tags=["FEMALE", "NEWS"]),  # reordered set: in sync
    desired(2, asset_description="desc 2", asset_order=20),  # changes
    desired(3, asset_name="Image 3"),  # in sync
    desired(4, asset_state="UNACTIVED", tags=["NEWS"]),  # changes
]


async def test_one_put_per_changed_asset_with_the_planned_body_then_nothing(
    emu: RunningEmulator,
) -> None:
    plan = await plan_for(emu, SPECS)
    planned = {a.asset_id: a.body for a in plan.by_action(Action.UPDATE)}
    assert len(planned) == 3
    emu.clear_requests()
    async with emu.client(retry=FAST_RETRY) as client:
        result = await apply_plan(plan, client, parallelism=2)
    assert result.exit_code == 0 and result.changed == 3
    assert summary(result) == "Apply complete! 3 changed, 0 failed."
    sent = put_log(emu)
    assert sorted(a for a, _ in sent) == sorted(planned)
    assert all(body == planned[a] for a, body in sent)
    # Apply reads only the assets it writes, right before writing them, through the list API.
    gets = [e for e in emu.requests() if e["method"] == "GET"]
    assert gets and len(gets) <= len(sent)
    read = [pair[1] for e in gets for pair in e["query"] if pair[0] == "asset_id"]
    assert all(e["path"] == emu.assets_path() for e in gets)
    assert sorted(read) == sorted(planned)

    again = await plan_for(emu, SPECS)
    assert not again.by_action(Action.UPDATE)
    emu.clear_requests()
    async with emu.client(retry=FAST_RETRY) as client:
        second = await apply_plan(again, client)
    assert put_log(emu) == [] and second.exit_code == 0


async def test_stale_plan_is_detected_after_an_out_of_band_edit(emu: RunningEmulator) -> None:
    plan = await plan_for(emu, SPECS)
    async with emu.client(retry=FAST_RETRY) as client:
        assert await find_stale(plan, client, live_fingerprint) == []
    emu.store.patch(asset(3)["asset_id"], {"asset_description": "edited by hand"})
    async with emu.client(retry=FAST_RETRY) as client:
        stale = await find_stale(plan, client, live_fingerprint)
    assert [s.asset_id for s in stale] == [asset(3)["asset_id"]]


async def test_converges_under_injected_failures_and_sends_only_planned_puts(
    tmp_path: Path,
) -> None:
    live = [asset(i) for i in range(30)]
    specs = [desired(i, asset_name=f"New {i}", tags=["NEWS"]) for i in range(0, 30, 2)]
    specs += [desired(i, asset_name=f"Image {i}") for i in range(1, 30, 2)]
    with run_emulator(live, fail_rate=0.1, drop_rate=0.1, random_seed=7) as emu:
        plan = await plan_for(emu, specs)
        planned = {a.asset_id: a.body for a in plan.by_action(Action.UPDATE)}
        assert len(planned) == 15
        emu.clear_requests()
        async with emu.client(parallelism=6, retry=FAST_RETRY) as client:
            result = await apply_plan(plan, client, parallelism=6)
        puts = put_log(emu)
        assert puts and all(body == planned[a] for a, body in puts)
        failures = [e for e in emu.requests() if e["method"] == "PUT" and e["status"] != 200]
        assert failures, "the fault injection should have hit some PUTs"
        assert result.changed == 15, [result_line(r) for r in result.results if not r.ok]

        emu.set_faults(fail_rate=0.0, drop_rate=0.0)
        after = await plan_for(emu, specs)
        assert after.summary.to_change == 0 and after.summary.errors == 0


async def test_ctrl_c_event_stops_new_puts_and_rerun_converges() -> None:
    live = [asset(i) for i in range(12)]
    specs = [desired(i, asset_name=f"Slow {i}") for i in range(12)]
    with run_emulator(live, latency_ms=150) as emu:
        plan = await plan_for(emu, specs)
        emu.clear_requests()
        cancel = asyncio.Event()
        async with emu.client(retry=FAST_RETRY) as client:
            task = asyncio.create_task(apply_plan(plan, client, parallelism=2, cancel=cancel))
            await asyncio.sleep(0.2)
            cancel.set()
            result = await task
        assert result.interrupted and result.exit_code == 130
        assert 0 < result.changed < 12 and result.not_started == 12 - result.changed
        assert len(put_log(emu)) == result.changed

        emu.set_faults(latency_ms=0)
        rerun = await plan_for(emu, specs)
        assert rerun.summary.to_change == 12 - result.changed
        async with emu.client(retry=FAST_RETRY) as client:
            assert (await apply_plan(rerun, client)).exit_code == 0
        assert (await plan_for(emu, specs)).summary.to_change == 0


async def test_write_only_values_are_recorded_and_not_resent(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "state.sqlite")
    state = store.records
    specs = [desired(0, shared_config={"shared_type": "PRIVATE"})]
    plan = await plan_for(emu, specs, state)
    row = plan.assets[0]
    assert row.action is Action.UPDATE and row.write_only_fingerprint
    async with emu.client(retry=FAST_RETRY) as client:
        result = await apply_plan(plan, client, state=state)
    assert result.results[0].outcome is Outcome.UPDATED
    assert state.get(emu.project_id, row.asset_id) is not None
    assert (await plan_for(emu, specs, state)).summary.to_change == 0
    store.close()


async def test_rejected_put_is_reported_with_code_and_request_id(emu: RunningEmulator) -> None:
    # The engine does not check lengths (the manifest loader does): the service refuses it.
    plan = await plan_for(emu, [desired(5, asset_name="x" * 300), desired(0, asset_name="ok")])
    async with emu.client(retry=FAST_RETRY) as client:
        result = await apply_plan(plan, client)
    bad, good = result.results
    assert good.outcome is Outcome.UPDATED
    assert bad.outcome is Outcome.FAILED and bad.status == 400 and bad.error_code
    assert bad.request_id and f"(request id {bad.request_id})" in result_line(bad)
    assert summary(result) == "Apply failed: 1 changed, 1 failed."
    lines = [result_line(r) for r in result.results]
    # One plain line per asset: no colour codes or line breaks from the service's message.
    assert all("\n" not in line and "\x1b" not in line for line in lines)
