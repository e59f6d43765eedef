"""Incremental ``watch`` cycles against the real emulator over loopback.

After a full read, a cycle lists the project by ``update_time`` descending down to the last
cycle's watermark and compares only what changed.  These tests drive the watch service in
process (one cycle at a time, so each cycle's requests can be read from the emulator's request
log) and as a real process (its log and ``/metrics``), and change the live project between and
during cycles.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_process import clean_env

from bench.process import free_port
from reconciler.emulator.testing import EmulatorFactory, RunningEmulator
from reconciler.engine.drift import DriftStatus
from reconciler.options import GlobalOptions
from reconciler.state import Resolution
from reconciler.state.sqlite import SqliteStore
from reconciler.watch.service import CycleOutcome, Watcher, WatchSettings

pytestmark = pytest.mark.e2e

COUNT = 250  # three pages
MANAGED = 200  # the rest is unmanaged
START = datetime(2024, 1, 1, tzinfo=UTC)


def asset_id(n: int) -> str:
    return f"{n:08d}-0000-4000-8000-000000000000"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def live_assets(count: int = COUNT) -> list[dict[str, Any]]:
    """Assets created one minute apart, last updated in another order (a permutation), long
    ago: the create order says nothing of the update order."""
    return [
        {
            "asset_id": asset_id(n),
            "asset_name": f"Clip {n}",
            "asset_description": f"Clip number {n}",
            "asset_type": "VIDEO",
            "asset_state": "ACTIVED",
            "tags": ["NEWS"],
            "create_time": stamp(START + timedelta(minutes=n)),
            "update_time": stamp(START + timedelta(days=30, minutes=(n * 97) % count)),
        }
        for n in range(count)
    ]


def write_manifests(root: Path, assets: list[dict[str, Any]]) -> None:
    folder = root / "manifests"
    folder.mkdir(exist_ok=True)
    for asset in assets:
        document = {
            "apiVersion": "reconciler.metastudio/v1",
            "kind": "DigitalAsset",
            "metadata": {"asset_id": asset["asset_id"]},
            "spec": {
                "asset_name": asset["asset_name"],
                "asset_description": asset["asset_description"],
                "tags": asset["tags"],
            },
        }
        (folder / f"{asset['asset_id'][:8]}.yaml").write_text(json.dumps(document))


def lists(emu: RunningEmulator) -> list[dict[str, Any]]:
    return [
        e for e in emu.requests() if e["method"] == "GET" and "/digital-assets/" not in e["path"]
    ]


def query(entry: dict[str, Any]) -> dict[str, str]:
    return {name: value for name, value in entry["query"]}


Cycle = Callable[[], CycleOutcome]


@pytest.fixture
def watcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorFactory
) -> Iterator[Callable[..., tuple[RunningEmulator, Watcher, Cycle]]]:
    """An emulator with COUNT assets, MANAGED of them in manifests (in sync), and a watch
    service in ``tmp_path`` whose cycles a test runs one at a time."""

    def make(**settings: Any) -> tuple[RunningEmulator, Watcher, Cycle]:
        assets = live_assets()
        emu = emulator(assets)
        for name in ("HW_ACCESS_KEY", "HW_SECRET_KEY", "HW_PROJECT_ID", "HW_AUTH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        for name, value in emu.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        write_manifests(tmp_path, assets[:MANAGED])
        watch = Watcher(GlobalOptions(), WatchSettings(paths=("manifests",), **settings))

        def cycle() -> CycleOutcome:
            emu.clear_requests()
            outcome = asyncio.run(watch.cycle())
            assert outcome.ok, outcome.error
            return outcome

        return emu, watch, cycle

    yield make


def drifted(outcome: CycleOutcome) -> list[str]:
    assert outcome.report is not None
    return [
        a.asset_id for a in outcome.report.projects[0].assets if a.status is DriftStatus.DRIFTED
    ]


def unmanaged_names(outcome: CycleOutcome) -> dict[str, str | None]:
    assert outcome.report is not None
    return {u.asset_id: u.name for u in outcome.report.projects[0].unmanaged}


def test_an_idle_cycle_sends_one_request_and_edits_between_cycles_are_seen_by_the_next(
    watcher: Callable[..., tuple[RunningEmulator, Watcher, Cycle]], tmp_path: Path
) -> None:
    emu, _, cycle = watcher()
    first = cycle()
    assert (first.kind, first.reads[0].reason) == ("full", "first")
    assert first.report is not None and first.report.managed == MANAGED
    assert len(first.report.projects[0].unmanaged) == COUNT - MANAGED

    idle = cycle()
    assert idle.kind == "incremental"
    sent = emu.requests()
    assert len(sent) == 1 and idle.requests == 1
    assert query(sent[0]) | {"offset": "0"} == {
        "limit": "100",
        "offset": "0",
        "sort_dir": "desc",
        "sort_key": "update_time",
    }
    assert drifted(idle) == [] and idle.report is not None
    assert (idle.report.managed, idle.report.unmanaged) == (MANAGED, COUNT - MANAGED)

    managed, unmanaged = asset_id(3), asset_id(MANAGED + 7)  # old rows, deep in the project
    emu.store.patch(managed, {"asset_name": "Edited in the console"})
    emu.store.patch(unmanaged, {"asset_name": "Renamed unmanaged"})
    seen = cycle()
    assert seen.kind == "incremental" and len(emu.requests()) == 1
    assert drifted(seen) == [managed]
    assert unmanaged_names(seen)[unmanaged] == "Renamed unmanaged"

    still = cycle()  # drift carried by later incremental cycles
    assert drifted(still) == [managed] and len(emu.requests()) == 1

    emu.store.patch(managed, {"asset_name": "Clip 3"})  # put back in the console
    back = cycle()
    assert drifted(back) == []
    with SqliteStore(tmp_path / ".reconciler" / "state.sqlite") as store:
        episodes = store.history.episodes(emu.project_id, managed)
    assert [(e.cycles, e.resolution) for e in episodes] == [(2, Resolution.OUT_OF_BAND)]


def test_a_changed_manifest_has_its_asset_read_by_id_that_cycle(
    watcher: Callable[..., tuple[RunningEmulator, Watcher, Cycle]], tmp_path: Path
) -> None:
    emu, _, cycle = watcher()
    cycle()
    target = asset_id(42)
    path = tmp_path / "manifests" / f"{target[:8]}.yaml"
    document = json.loads(path.read_text())
    document["spec"]["asset_name"] = "Renamed in git"
    path.write_text(json.dumps(document))
    (tmp_path / "manifests" / f"{asset_id(43)[:8]}.yaml").unlink()  # no longer managed
    outcome = cycle()
    assert outcome.kind == "incremental"
    assert drifted(outcome) == [target]
    by_id = [query(e) for e in lists(emu) if "asset_id" in query(e)]
    assert by_id and {q["asset_id"] for q in by_id} <= {target, asset_id(43)}
    assert unmanaged_names(outcome)[asset_id(43)] == "Clip 43"
    assert outcome.report is not None and outcome.report.managed == MANAGED - 1


def test_an_edit_made_during_a_cycle_is_seen_by_the_next_one(
    watcher: Callable[..., tuple[RunningEmulator, Watcher, Cycle]],
) -> None:
    emu, _, cycle = watcher()
    early, late = asset_id(0), asset_id(1)
    # Right after the first list answer of the full read, while its pages are being read.
    emu.edit_later(early, {"asset_name": "Edited during the full read"}, after=None, method="GET")
    cycle()
    assert emu.store.get(early)["asset_name"] == "Edited during the full read"  # type: ignore[index]
    assert early in drifted(cycle())
    # Right after the one list request of an incremental cycle.
    emu.edit_later(late, {"asset_name": "Edited during a cycle"}, after=None, method="GET")
    during = cycle()
    until(lambda: emu.store.get(late)["asset_name"] == "Edited during a cycle")  # type: ignore[index]
    assert late not in drifted(during)  # it was listed before the edit
    assert sorted(drifted(cycle())) == [early, late]


def test_an_edit_stamped_exactly_at_the_watermark_is_seen(
    watcher: Callable[..., tuple[RunningEmulator, Watcher, Cycle]],
) -> None:
    emu, _, cycle = watcher(margin=0)
    cycle()
    newest = max(a["update_time"] for a in emu.store.all())
    edited = asset_id(5)
    emu.store.patch(edited, {"asset_name": "Same millisecond"})
    emu.set_update_time(edited, newest)  # stamped in the very millisecond of the watermark
    outcome = cycle()
    assert outcome.kind == "incremental" and len(emu.requests()) == 1
    assert drifted(outcome) == [edited]


def test_a_second_precision_service_is_read_incrementally(
    watcher: Callable[..., tuple[RunningEmulator, Watcher, Cycle]],
) -> None:
    emu, _, cycle = watcher(margin=0)
    for asset in emu.store.all():
        emu.set_update_time(asset["asset_id"], asset["update_time"][:19] + "Z")
    cycle()
    newest = max(a["update_time"] for a in emu.store.all())
    emu.store.patch(asset_id(9), {"asset_name": "Same second"})
    emu.set_update_time(asset_id(9), newest)
    assert drifted(cycle()) == [asset_id(9)]


def test_a_deleted_asset_makes_the_cycle_read_the_whole_project(
    watcher: Callable[..., tuple[RunningEmulator, Watcher, Cycle]],
) -> None:
    emu, _, cycle = watcher()
    cycle()
    gone = asset_id(MANAGED + 1)
    emu.store.delete(gone)
    outcome = cycle()
    assert (outcome.kind, outcome.reads[0].reason) == ("full", "count")
    assert gone not in unmanaged_names(outcome)
    assert cycle().kind == "incremental"


def test_a_full_resync_runs_on_schedule(
    watcher: Callable[..., tuple[RunningEmulator, Watcher, Cycle]],
) -> None:
    emu, _, cycle = watcher(resync=1.0)
    assert cycle().kind == "full"
    assert cycle().kind == "incremental"
    time.sleep(1.05)
    resync = cycle()
    assert (resync.kind, resync.reads[0].reason) == ("full", "resync")
    assert len(lists(emu)) == 1 + 3  # the watermark page, then every page
    assert cycle().kind == "incremental"


def test_self_heal_in_an_incremental_cycle_heals_and_records_as_a_full_one_would(
    watcher: Callable[..., tuple[RunningEmulator, Watcher, Cycle]], tmp_path: Path
) -> None:
    emu, _, cycle = watcher(self_heal=True)
    cycle()
    edited = asset_id(11)
    emu.store.patch(edited, {"asset_description": "Changed in the console"})
    healed = cycle()
    assert healed.kind == "incremental" and healed.heal["healed"] == 1
    assert emu.store.get(edited)["asset_description"] == "Clip number 11"  # type: ignore[index]
    after = cycle()  # the heal's write is listed, compared again: in sync
    assert after.kind == "incremental" and drifted(after) == [] and not after.heal
    with SqliteStore(tmp_path / ".reconciler" / "state.sqlite") as store:
        episodes = store.history.episodes(emu.project_id, edited)
    assert [(e.cycles, e.resolution) for e in episodes] == [(1, Resolution.SELF_HEAL)]


def until(check: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def metric(port: int, name: str, **labels: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)", line)
        if (
            match
            and match.group(1) == name
            and ",".join(sorted((match.group(2) or "").split(","))) == want
        ):
            return float(match.group(3))
    return None


def test_a_service_that_ignores_sort_key_makes_the_watch_read_whole_projects_and_say_so(
    tmp_path: Path, emulator: EmulatorFactory
) -> None:
    assets = live_assets()
    emu = emulator(assets)
    emu.set_behaviour(ignore_sort_key=True)
    write_manifests(tmp_path, assets[:MANAGED])
    port = free_port()
    log = tmp_path / "watch.log"
    argv = [sys.executable, "-m", "reconciler", "--log-format", "json", "watch", "manifests"]
    argv += ["--interval", "0.3s", "--metrics-addr", f"127.0.0.1:{port}"]
    with log.open("wb") as err:
        proc = subprocess.Popen(
            argv, cwd=tmp_path, env=clean_env(emu.env()), stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        fallbacks = {"target": "default", "reason": "order"}
        until(lambda: (metric(port, "reconciler_read_fallbacks_total", **fallbacks) or 0) >= 2, 30)
        edited = asset_id(4)
        emu.store.patch(edited, {"asset_name": "Edited while the sort is ignored"})
        until(lambda: metric(port, "reconciler_assets_drifted", target="default") == 1, 10)
        assert (
            metric(port, "reconciler_project_reads_total", target="default", kind="incremental")
            == 0
        )
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    reasons = [e for e in entries if e.get("event") == "full-read"]
    assert reasons and reasons[0]["reason"] == "order"
    assert "not newest first" in reasons[0]["message"]
    cycles = [e for e in entries if e.get("event") == "cycle"]
    assert cycles and all(e["kind"] == "full" for e in cycles)
