"""The watch rows of ``make bench``: a ``reconciler watch`` process over a large project, its
first (full) read, then incremental cycles, every other one after 10 assets were edited between
cycles (signed PUTs to the emulator, as the console would).  Requests are counted from the
emulator's ``--record`` log between the watch's own cycle log lines, the wall time is the
cycle's own (from its log line), and an edit is *seen* once the cycle that logs it drifting has
ended.  CPU and peak RSS are the watch process's over its whole run (CPU per cycle on average).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import process, workload
from bench.run import Row, floor_seconds, format_row, load_generator, now_utc

CYCLES = 10  # incremental cycles after the first read
CHANGED = 10  # assets edited before every other cycle
INTERVAL = "2s"
IDLE = "watch, idle incremental cycle"
BUSY = f"watch, incremental cycle with {CHANGED} changed"
FIRST = "watch, first (full) read"


@dataclass
class WatchFigures:
    """What the run measured beyond the rows: when each batch of edits was seen."""

    seen_after_s: list[float] = field(default_factory=list)
    seen_by_next_cycle: list[bool] = field(default_factory=list)


FIGURES = WatchFigures()


def _put(endpoint: str, asset_id: str, body: dict[str, Any]) -> None:
    """An out-of-band edit: one PUT signed as the SDK signs it."""
    from reconciler.api import signing

    path = f"/v1/{process.PROJECT_ID}/digital-assets/{asset_id}"
    content = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "Host": endpoint.split("://", 1)[1],
        "X-Project-Id": process.PROJECT_ID,
        signing.DATE_HEADER: signing.sdk_date(),
    }
    headers["Authorization"] = signing.authorization(
        process.AK, process.SK, "PUT", path, [], headers, content
    )
    answer = httpx.put(endpoint + path, headers=headers, content=content, timeout=30)
    answer.raise_for_status()


def _events(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def bench_watch(n: int, root: Path, *, latency_ms: int, rates: dict[str, float]) -> list[Row]:
    """One watch over ``n`` assets: its first read and :data:`CYCLES` incremental cycles."""
    stamp = now_utc()
    work = root / f"watch-{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    live = workload.make_updatable(load_generator()(n, seed=n, project_id=process.PROJECT_ID))
    seed = work / "seed.json"
    workload.write_seed(live, seed)
    workload.write_manifests(live, work / "manifests", drift_ratio=0.0, seed=n)
    rate_arg = ",".join(f"{k}={v:g}" for k, v in rates.items())
    per_cycle: dict[int, tuple[int, dict[str, int], float]] = {}  # cycle -> requests, wall
    with process.emulator(work, seed=seed, latency_ms=latency_ms, rate_limits=rate_arg) as emu:
        requests = process.RequestLog(emu.record)
        requests.read_new()
        log = work / "watch.log"
        argv = process.reconciler_argv(emu.endpoint, "--log-format", "json", "watch")
        argv += ["manifests", "--interval", INTERVAL]
        with log.open("wb") as err:
            watch = subprocess.Popen(
                argv, cwd=work, env=process.credentials_env(), stdout=subprocess.DEVNULL, stderr=err
            )
        try:
            done = 0

            def cycles() -> list[dict[str, Any]]:
                return [e for e in _events(log) if e.get("event") == "cycle"]

            edited_ids = [a["asset_id"] for a in live[:: max(1, n // (CHANGED * CYCLES))]]
            for number in range(1, CYCLES + 2):
                edit_batch: list[str] = []
                edited_at = 0.0
                if number > 1 and number % 2 == 1:  # before cycles 3, 5, ...
                    edit_batch = edited_ids[:CHANGED]
                    edited_ids = edited_ids[CHANGED:]
                    for asset_id in edit_batch:
                        _put(emu.endpoint, asset_id, {"asset_name": f"Console edit {number}"})
                    edited_at = time.monotonic()
                requests.read_new()  # the edits' own PUTs are not the watch's
                _wait(lambda: len(cycles()) >= number, 600, f"cycle {number}")  # noqa: B023
                entries = requests.read_new()
                event = cycles()[number - 1]
                if event.get("result") != "success":
                    raise RuntimeError(f"cycle {number} failed: {event.get('error')}")
                if edit_batch:
                    opened = {
                        e["asset_id"] for e in _events(log) if e.get("event") == "drift-opened"
                    }
                    FIGURES.seen_by_next_cycle.append(set(edit_batch) <= opened)
                    FIGURES.seen_after_s.append(time.monotonic() - edited_at)
                counts = dict(process.count_kinds(entries))
                per_cycle[number] = (number, counts, float(event["duration_seconds"]))
                if event.get("kind") != ("full" if number == 1 else "incremental"):
                    raise RuntimeError(f"cycle {number} was a {event.get('kind')} read")
                done = number
        finally:
            if watch.poll() is None:
                watch.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(watch.pid, 0)
            watch.returncode = os.waitstatus_to_exitcode(status)
    cpu_s = usage.ru_utime + usage.ru_stime
    rss_mb = usage.ru_maxrss / 1024  # KiB on Linux

    def row(command: str, numbers: Sequence[int]) -> Row:
        kinds = {k for i in numbers for k in per_cycle[i][1]}
        counts = {
            k: round(statistics.mean(per_cycle[i][1].get(k, 0) for i in numbers)) for k in kinds
        }
        wall = statistics.mean(per_cycle[i][2] for i in numbers)
        return Row(
            assets=n,
            command=command,
            counts=counts,
            wall_s=wall,
            floor_s=floor_seconds(counts, rates),
            cpu_s=cpu_s / (done or 1),
            max_rss_mb=rss_mb,
            returncode=watch.returncode,
            changed=CHANGED if command == BUSY else 0,
            measured_at=stamp,
        )

    busy = [i for i in range(2, CYCLES + 2) if i % 2 == 1]
    idle = [i for i in range(2, CYCLES + 2) if i % 2 == 0]
    rows = [row(FIRST, [1]), row(IDLE, idle), row(BUSY, busy)]
    for measured in rows:
        print(format_row(measured), flush=True)
    return rows


def watch_verdict(rows: Sequence[Row]) -> list[str]:
    """The issue's targets for the watch rows, and when the edits were seen."""
    idle = next((r for r in rows if r.command == IDLE), None)
    busy = next((r for r in rows if r.command == BUSY), None)
    if idle is None or busy is None:
        return []
    idle_n, busy_n = sum(idle.counts.values()), sum(busy.counts.values())
    lines = [
        f"- watch at {idle.assets:,} assets: an idle incremental cycle sends {idle_n} request(s) "
        f"(target <= 2: {'met' if idle_n <= 2 else 'not met'}), one with {CHANGED} changed "
        f"assets {busy_n} (target <= 3: {'met' if busy_n <= 3 else 'not met'}); cycles of "
        f"{idle.wall_s:.2f} s and {busy.wall_s:.2f} s (the first, full read: see its row)"
    ]
    if FIGURES.seen_after_s:
        lines.append(
            f"- edits made between cycles ({INTERVAL} interval): seen by the next cycle "
            f"{sum(FIGURES.seen_by_next_cycle)} of {len(FIGURES.seen_by_next_cycle)} times, "
            f"{statistics.median(FIGURES.seen_after_s):.2f} s after the edit (median; "
            f"longest {max(FIGURES.seen_after_s):.2f} s)"
        )
    return lines
