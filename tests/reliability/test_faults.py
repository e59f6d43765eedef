"""Fault injection across plan and apply against the real emulator process.

Whatever the service does (500s, 429 storms, dropped connections, latency spikes, a restart in the
middle of an apply), two things must hold: repeating plan+apply converges to "no changes", and no
PUT ever reaches the service that is not exactly a body of a plan the user saw.
"""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from .harness import Project

pytestmark = pytest.mark.reliability


def planned_bodies(plan_file: Any) -> dict[str, list[Any]]:
    data = json.loads(plan_file.read_text())
    bodies: dict[str, list[Any]] = {}
    for asset in (a for target in data["targets"] for a in target["assets"]):
        if asset.get("action") == "update":
            bodies.setdefault(asset["asset_id"], []).append(asset["body"])
    return bodies


def converge(project: Project, rounds: int = 4) -> dict[str, list[Any]]:
    """plan --out / apply PLANFILE until a plan shows no changes; every planned body collected."""
    planned: dict[str, list[Any]] = {}
    for i in range(rounds):
        plan_file = project.root / f"round-{i}.plan.json"
        plan = project.cli("plan", "manifests", "--out", str(plan_file), "--detailed-exitcode")
        plan.assert_clean()
        if plan.returncode == 0:
            return planned
        if plan.returncode == 1:  # the service failed even after retries: try the next round
            continue
        assert plan.returncode == 2, plan.output
        for asset_id, bodies in planned_bodies(plan_file).items():
            planned.setdefault(asset_id, []).extend(bodies)
        applied = project.cli("apply", str(plan_file), "--auto-approve")
        applied.assert_clean()
        assert applied.returncode in (0, 1), applied.output
    raise AssertionError(f"no convergence after {rounds} rounds of plan and apply")


def assert_only_planned_puts(project: Project, planned: dict[str, list[Any]]) -> None:
    puts = project.puts()
    assert puts, "the drifted assets were never sent"
    for asset_id, body in puts:
        assert asset_id in project.drifted, f"PUT for an asset in sync: {asset_id}"
        assert body in planned.get(asset_id, []), f"unplanned body for {asset_id}: {body}"
    assert {asset_id for asset_id, _ in puts} == set(project.drifted)


def assert_in_sync(project: Project) -> None:
    """A plan against the same database, faults off, shows no changes."""
    with project.emulator():
        final = project.cli("plan", "manifests", "--detailed-exitcode")
    assert final.returncode == 0, final.output
    assert "No changes." in final.stdout


def assert_fault_happened(project: Project, faults: dict[str, Any]) -> None:
    """Otherwise the test would prove nothing."""
    entries = project.requests()
    statuses = [e.get("status") for e in entries]
    if faults.get("fail_rate"):
        assert 500 in statuses, "no 500 was injected"
    if faults.get("drop_rate"):
        assert any(e.get("dropped") for e in entries), "no connection was dropped"
    if "rate_limits" in faults:  # the client paces to 20/s and 10/s: the service must throttle
        assert 429 in statuses, "no storm happened"


FAULTS = {
    "500s": {"fail_rate": 0.25},
    "dropped connections": {"drop_rate": 0.2},
    "429 storm": {"rate_limits": "list=3,show=3,update=2"},
    "latency spikes": {"latency_ms": 20, "jitter_ms": 400},
    "everything at once": {"fail_rate": 0.15, "drop_rate": 0.1, "jitter_ms": 100},
}


@pytest.mark.parametrize("faults", list(FAULTS.values()), ids=list(FAULTS))
def test_plan_and_apply_converge_under_faults(project: Project, faults: dict[str, Any]) -> None:
    with project.emulator(**faults):
        planned = converge(project)
    assert_fault_happened(project, faults)
    assert_only_planned_puts(project, planned)
    assert_in_sync(project)


def test_emulator_restarted_mid_apply(project: Project) -> None:
    """Kill -9 the service while PUTs are in flight, start it again on the same database: the
    apply finishes or fails per asset with a clear message, and a re-run converges."""
    plan_file = project.root / "first.plan.json"
    with project.emulator(latency_ms=150, rate_limits="list=20,show=20,update=2") as emu:
        plan = project.cli("plan", "manifests", "--out", str(plan_file), "--detailed-exitcode")
        assert plan.returncode == 2, plan.output
        apply_proc = project.spawn("apply", str(plan_file), "--auto-approve")
        deadline = time.monotonic() + 30
        while not project.puts() and time.monotonic() < deadline:
            time.sleep(0.05)
        sent = len(project.puts())
        assert 0 < sent < len(project.drifted), f"{sent} PUTs before the kill: not mid-apply"
        emu.process.send_signal(signal.SIGKILL)
        emu.process.wait()
    time.sleep(0.3)
    with project.emulator(latency_ms=20):
        out, err = apply_proc.communicate(timeout=120)
        assert "Traceback (most recent call last)" not in out + err, out + err
        assert apply_proc.returncode in (0, 1), out + err
        planned = planned_bodies(plan_file)
        rest = converge(project)
    for asset_id, bodies in rest.items():
        planned.setdefault(asset_id, []).extend(bodies)
    assert_only_planned_puts(project, planned)
    assert_in_sync(project)


def test_service_down_is_one_clear_error(project: Project) -> None:
    project.fail_fast()
    plan = project.cli("plan", "manifests")
    assert plan.returncode == 1
    plan.assert_clean()
    assert str(project.port) in plan.stderr or "127.0.0.1" in plan.stderr, plan.stderr
    applied = project.cli("apply", "manifests", "--auto-approve")
    assert applied.returncode == 1
    applied.assert_clean()
