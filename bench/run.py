"""``make bench``: plan and apply over 1,000 and 10,000 assets against a real emulator process.

For each size: generate live assets, seed an emulator (its own process, published rate limits,
realistic latency), write manifests that match except for 1% drifted, then time
``reconciler plan`` and ``reconciler apply --auto-approve`` as whole processes, and a final plan
that must show no changes.  At 1,000 assets the same emulator also serves the baseline
(``bench/baseline.py``: the official SDK, one ``show_asset`` per manifest), right after the plan
and before apply, so both see the same drift.  Requests are counted from the emulator's request
log; the rate-limit floor is what the service's limits alone would cost.  The table is printed
and written to bench/results.md between markers, leaving the hand-written findings there
untouched; ``--json FILE`` writes every row and the baseline as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import process, startup, workload

RESULTS = Path(__file__).with_name("results.md")
# Every row of the latest run of each size, so that a run of one size keeps the others' rows.
RESULTS_JSON = Path(__file__).with_name("results.json")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
DEFAULT_RATES = {"list": 20.0, "show": 20.0, "update": 10.0}
# The half-quota rows: the emulator allows half of what the client is configured for (the
# tenant's real quota is lower than the published one, or other clients share it).
HALF_RATES = {api: rate / 2 for api, rate in DEFAULT_RATES.items()}
HALF_CHANGES = 200  # drifted assets in the half-quota rows
HALF_SUFFIX = ", half quota"
BASELINE_SIZE = 1000  # the SDK script runs at this size only: it takes 1/20 s per asset
BASELINE_THREADS = 10
COMMAND_ORDER = ("plan", "apply", "re-plan")


@dataclass
class Row:
    assets: int
    command: str
    counts: dict[str, int]
    wall_s: float
    floor_s: float
    cpu_s: float
    max_rss_mb: float
    returncode: int
    # wall time split by the emulator's request times: before the first, between, after the last
    split: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # apply: read requests that asked only for assets the run then wrote (the fresh reads
    # before each PUT attempt, and read-backs)
    fresh_reads: int = 0
    changed: int | None = None  # assets the command reports as to change (plans)
    measured_at: str = ""
    landed: int | None = None  # apply: assets whose PUT the service accepted
    to_land: int | None = None  # apply: assets the manifests changed
    # apply: seconds from the first PUT to the last accepted one, and the PUTs accepted
    put_window_s: float | None = None
    puts_accepted: int | None = None

    @classmethod
    def measured(
        cls,
        n: int,
        command: str,
        timed: process.Timed,
        entries: Sequence[dict[str, Any]],
        rates: dict[str, float],
        **extra: Any,
    ) -> Row:
        """The row of one timed command and the requests the emulator saw during it, its floor
        at ``rates`` (``extra``: the optional figures of some rows)."""
        counts = dict(process.count_kinds(entries))
        return cls(
            assets=n,
            command=command,
            counts=counts,
            wall_s=timed.wall_s,
            floor_s=floor_seconds(counts, rates),
            cpu_s=timed.cpu_s,
            max_rss_mb=timed.max_rss_mb,
            returncode=timed.returncode,
            split=process.phases(entries, timed.started_at, timed.wall_s),
            **extra,
        )

    @property
    def ratio(self) -> float:
        return self.wall_s / self.floor_s if self.floor_s else float("nan")

    @property
    def cpu_ms_per_asset(self) -> float:
        return self.cpu_s * 1000 / self.assets

    def to_json(self) -> dict[str, Any]:
        return {
            "assets": self.assets,
            "command": self.command,
            "wall_s": round(self.wall_s, 3),
            "floor_s": round(self.floor_s, 3),
            "ratio": round(self.ratio, 3) if self.floor_s else None,
            "cpu_s": round(self.cpu_s, 3),
            "cpu_ms_per_asset": round(self.cpu_ms_per_asset, 4),
            "peak_rss_mb": round(self.max_rss_mb, 1),
            "requests": dict(sorted(self.counts.items())),
            "exit_code": self.returncode,
            "before_s": round(self.split[0], 3),
            "during_s": round(self.split[1], 3),
            "after_s": round(self.split[2], 3),
            "changed": self.changed,
            "fresh_reads": self.fresh_reads,
            "landed": self.landed,
            "to_land": self.to_land,
            "put_window_s": None if self.put_window_s is None else round(self.put_window_s, 3),
            "puts_accepted": self.puts_accepted,
            "measured_at": self.measured_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        return cls(
            assets=int(data["assets"]),
            command=str(data["command"]),
            counts={str(k): int(v) for k, v in data["requests"].items()},
            wall_s=float(data["wall_s"]),
            floor_s=float(data["floor_s"]),
            cpu_s=float(data["cpu_s"]),
            max_rss_mb=float(data["peak_rss_mb"]),
            returncode=int(data["exit_code"]),
            split=(float(data["before_s"]), float(data["during_s"]), float(data["after_s"])),
            changed=data.get("changed"),
            fresh_reads=int(data.get("fresh_reads", 0)),
            measured_at=str(data.get("measured_at", "")),
            landed=data.get("landed"),
            to_land=data.get("to_land"),
            put_window_s=data.get("put_window_s"),
            puts_accepted=data.get("puts_accepted"),
        )


@dataclass
class Baseline:
    """The SDK script against the same emulator and manifests as the plan it is compared with."""

    assets: int
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    counts: dict[str, int]
    returncode: int
    changed: int | None
    tool_wall_s: float  # the plan of the same size in the same run
    tool_changed: int | None
    threads: int = BASELINE_THREADS
    measured_at: str = ""

    @property
    def ratio(self) -> float:
        """How many times longer the script takes than ``reconciler plan``."""
        return self.wall_s / self.tool_wall_s if self.tool_wall_s else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "assets": self.assets,
            "command": "sdk show_asset script",
            "threads": self.threads,
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "peak_rss_mb": round(self.max_rss_mb, 1),
            "requests": dict(sorted(self.counts.items())),
            "exit_code": self.returncode,
            "changed": self.changed,
            "tool_wall_s": round(self.tool_wall_s, 3),
            "tool_changed": self.tool_changed,
            "ratio": round(self.ratio, 2),
            "measured_at": self.measured_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Baseline:
        return cls(
            assets=int(data["assets"]),
            wall_s=float(data["wall_s"]),
            cpu_s=float(data["cpu_s"]),
            max_rss_mb=float(data["peak_rss_mb"]),
            counts={str(k): int(v) for k, v in data["requests"].items()},
            returncode=int(data["exit_code"]),
            changed=data.get("changed"),
            tool_wall_s=float(data["tool_wall_s"]),
            tool_changed=data.get("tool_changed"),
            threads=int(data.get("threads", BASELINE_THREADS)),
            measured_at=str(data.get("measured_at", "")),
        )


@dataclass
class PlanStartup:
    """A plan of one manifest: how long until its first request reaches the service."""

    first_request_s: list[float]
    wall_s: list[float]
    measured_at: str = ""

    @property
    def median_first_request_s(self) -> float:
        return statistics.median(self.first_request_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "plan (one manifest)",
            "first_request_s": round(self.median_first_request_s, 3),
            "wall_s": round(statistics.median(self.wall_s), 3),
            "runs": [
                {"first_request_s": round(f, 3), "wall_s": round(w, 3)}
                for f, w in zip(self.first_request_s, self.wall_s, strict=True)
            ],
            "measured_at": self.measured_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanStartup:
        runs = data.get("runs") or []
        return cls(
            first_request_s=[float(r["first_request_s"]) for r in runs],
            wall_s=[float(r["wall_s"]) for r in runs],
            measured_at=str(data.get("measured_at", "")),
        )


@dataclass
class Results:
    """What one or more sizes measured: the rows, the SDK baseline and the start-up runs."""

    rows: list[Row] = field(default_factory=list)
    baseline: Baseline | None = None
    startup: PlanStartup | None = None

    def add(self, other: Results) -> None:
        self.rows.extend(other.rows)
        self.baseline = other.baseline or self.baseline
        self.startup = other.startup or self.startup


def floor_seconds(counts: dict[str, int], rates: dict[str, float]) -> float:
    """Time the service's per-API limits alone impose: requests / allowed rate, summed."""
    return sum(counts.get(kind, 0) / rate for kind, rate in rates.items())


def accepted_counts(entries: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Requests by kind that the service's limits let through (a 429 takes no token)."""
    return dict(process.count_kinds([e for e in entries if e.get("status") != 429]))


def put_window(entries: Sequence[dict[str, Any]]) -> tuple[float, int] | None:
    """Seconds from the first PUT to the last accepted one, and how many were accepted: the
    write phase alone, whose floor is (accepted - 1) / the update rate."""
    puts = [e for e in entries if process.request_kind(e) == "update"]
    accepted = [e for e in puts if int(e.get("status") or 0) < 400]
    first = [t for t in map(process.entry_time, puts) if t is not None]
    last = [t for t in map(process.entry_time, accepted) if t is not None]
    if not first or not last:
        return None
    return max(last) - min(first), len(accepted)


def landed_assets(entries: Sequence[dict[str, Any]]) -> set[str]:
    """Assets at least one of whose PUTs the service accepted."""
    return {
        str(e["path"]).rsplit("/", 1)[1]
        for e in entries
        if process.request_kind(e) == "update" and int(e.get("status") or 0) < 400
    }


_CHANGED = re.compile(r"^Plan: (\d+) to change", re.MULTILINE)


def plan_changed(stdout: str) -> int | None:
    """Assets a text plan reports as to change (``Plan: N to change``, or none)."""
    if "No changes." in stdout:
        return 0
    found = _CHANGED.search(stdout)
    return int(found.group(1)) if found else None


_SCRIPT_CHANGED = re.compile(r"^changed: (\d+)$", re.MULTILINE)


def script_changed(stdout: str) -> int | None:
    found = _SCRIPT_CHANGED.search(stdout)
    return int(found.group(1)) if found else None


def now_utc() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"


def load_generator() -> Callable[..., list[dict[str, Any]]]:
    """The emulator's realistic asset generator (one source of truth for test data)."""
    from reconciler.emulator import generate_assets

    return generate_assets


def bench_size(
    n: int,
    root: Path,
    *,
    latency_ms: int,
    rates: dict[str, float],
    profile: bool,
    baseline: bool = False,
    startup: bool = False,
    plan_only: bool = False,
) -> Results:
    work = root / f"n{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    live = workload.make_updatable(load_generator()(n, seed=n, project_id=process.PROJECT_ID))
    seed = work / "seed.json"
    workload.write_seed(live, seed)
    load = workload.write_manifests(live, work / "manifests", drift_ratio=0.01, seed=n)
    del live  # the emulator holds the live assets; 100,000 of them are worth freeing here
    rate_arg = ",".join(f"{k}={v:g}" for k, v in rates.items())
    env = process.credentials_env()
    result = Results()
    stamp = now_utc()
    accepted_puts = 0
    with process.emulator(work, seed=seed, latency_ms=latency_ms, rate_limits=rate_arg) as emu:
        log = process.RequestLog(emu.record)
        log.read_new()  # readiness probes are not part of any phase

        def phase(name: str, *args: str, expect: Sequence[int]) -> Row:
            timed = process.run_timed(
                process.reconciler_argv(emu.endpoint, *args), env=env, cwd=work
            )
            nonlocal accepted_puts
            entries = log.read_new()
            accepted_puts = sum(
                1
                for e in entries
                if process.request_kind(e) == "update" and int(e.get("status") or 0) < 400
            )
            row = Row.measured(
                n,
                name,
                timed,
                entries,
                rates,
                fresh_reads=fresh_reads(entries),
                changed=plan_changed(timed.stdout) if name != "apply" else None,
                measured_at=stamp,
            )
            result.rows.append(row)
            print(format_row(row), flush=True)
            if timed.returncode not in expect:
                print(f"  unexpected exit {timed.returncode} from {name}:", file=sys.stderr)
                print(_tail(timed.stderr) or _tail(timed.stdout), file=sys.stderr)
            return row

        if startup:
            result.startup = run_startup(emu, log, work, env)
            result.startup.measured_at = stamp
            print(f"start-up: {format_startup(result.startup)}", flush=True)
        planned = phase("plan", "plan", "manifests", "--detailed-exitcode", expect=(2,))
        if baseline:
            result.baseline = run_baseline(emu, log, work, env, planned, rates)
            result.baseline.measured_at = stamp
            print(f"baseline: {format_baseline(result.baseline)}", flush=True)
        if profile:
            _profile_plan(emu.endpoint, work, env)
            log.read_new()
        if plan_only:
            return result
        applied = phase("apply", "apply", "manifests", "--auto-approve", expect=(0,))
        if applied.returncode == 0 and accepted_puts != len(load.drifted):
            print(f"  expected {len(load.drifted)} PUTs, saw {accepted_puts}", file=sys.stderr)
        phase("re-plan", "plan", "manifests", "--detailed-exitcode", expect=(0,))
    return result


def bench_half_quota(
    n: int,
    root: Path,
    *,
    latency_ms: int,
    changes: int = HALF_CHANGES,
    plan_only: bool = False,
) -> list[Row]:
    """Plan and apply against a service whose real limits are half the configured ones: the
    emulator allows :data:`HALF_RATES` while the client keeps the published rates (20/20/10), so
    the run meets 429s and must adapt. The floor of these rows is the *real* one: the requests
    the service let through / the rates it really allows."""
    work = root / f"half-{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    live = workload.make_updatable(load_generator()(n, seed=n, project_id=process.PROJECT_ID))
    seed = work / "seed.json"
    workload.write_seed(live, seed)
    load = workload.write_manifests(
        live, work / "manifests", drift_ratio=min(1.0, changes / n), seed=n
    )
    del live
    rate_arg = ",".join(f"{k}={v:g}" for k, v in HALF_RATES.items())
    env = process.credentials_env()
    rows: list[Row] = []
    stamp = now_utc()
    with process.emulator(work, seed=seed, latency_ms=latency_ms, rate_limits=rate_arg) as emu:
        log = process.RequestLog(emu.record)
        log.read_new()

        def phase(name: str, *args: str, expect: Sequence[int]) -> Row:
            timed = process.run_timed(
                process.reconciler_argv(emu.endpoint, *args), env=env, cwd=work
            )
            entries = log.read_new()
            applying = args[0] == "apply"
            landed = landed_assets(entries) & load.drifted
            window = put_window(entries) if applying else None
            row = Row(
                assets=n,
                command=name + HALF_SUFFIX,
                counts=dict(process.count_kinds(entries)),
                wall_s=timed.wall_s,
                floor_s=floor_seconds(accepted_counts(entries), HALF_RATES),
                cpu_s=timed.cpu_s,
                max_rss_mb=timed.max_rss_mb,
                returncode=timed.returncode,
                split=process.phases(entries, timed.started_at, timed.wall_s),
                fresh_reads=fresh_reads(entries),
                changed=None if applying else plan_changed(timed.stdout),
                measured_at=stamp,
                landed=len(landed) if applying else None,
                to_land=len(load.drifted) if applying else None,
                put_window_s=window[0] if window else None,
                puts_accepted=window[1] if window else None,
            )
            rows.append(row)
            print(format_row(row), flush=True)
            if timed.returncode not in expect:
                print(f"  unexpected exit {timed.returncode} from {name}:", file=sys.stderr)
                print(_tail(timed.stderr) or _tail(timed.stdout), file=sys.stderr)
            warning = [line for line in timed.stderr.splitlines() if "throttled" in line]
            if warning:
                print(f"  {name}: {warning[-1].strip()}", flush=True)
            return row

        phase("plan", "plan", "manifests", "--detailed-exitcode", expect=(2,))
        if not plan_only:
            phase("apply", "apply", "manifests", "--auto-approve", expect=(0,))
            phase("re-plan", "plan", "manifests", "--detailed-exitcode", expect=(0,))
    return rows


def half_quota_table(rows: Sequence[Row]) -> list[str]:
    """The half-quota rows: what the adaptive pacing costs against the real limits."""
    half = [r for r in rows if r.command.endswith(HALF_SUFFIX)]
    if not half:
        return []
    configured = ", ".join(f"{k} {v:g}/s" for k, v in DEFAULT_RATES.items())
    real = ", ".join(f"{k} {v:g}/s" for k, v in HALF_RATES.items())
    lines = [
        f"Half quota: the client configured {configured}, the emulator allowing {real}; the "
        "real floor is the requests the service let through / the rates it really allows.",
        "",
        "| assets | command | list | show | update | 429 | fresh reads | changes landed "
        "| wall s | real floor s | wall / real floor | PUTs first to last s (floor) | exit |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in half:
        c = row.counts
        landed = "-" if row.landed is None else f"{row.landed} of {row.to_land}"
        puts = "-"
        if row.put_window_s is not None and row.puts_accepted:
            put_floor = (row.puts_accepted - 1) / HALF_RATES["update"]
            puts = f"{row.put_window_s:.2f} ({put_floor:.2f})"
        lines.append(
            f"| {row.assets:,} | {row.command.removesuffix(HALF_SUFFIX)} | {c.get('list', 0)} "
            f"| {c.get('show', 0)} | {c.get('update', 0)} | {c.get('throttled', 0)} "
            f"| {row.fresh_reads} | {landed} | {row.wall_s:.2f} | {row.floor_s:.2f} "
            f"| {row.ratio:.2f} | {puts} | {row.returncode} |"
        )
    return [*lines, ""]


def run_baseline(
    emu: process.Emulator,
    log: process.RequestLog,
    work: Path,
    env: dict[str, str],
    planned: Row,
    rates: dict[str, float],
) -> Baseline:
    """The SDK script (bench/baseline.py) over the same manifests, against the same emulator."""
    argv = [
        sys.executable,
        "-m",
        "bench.baseline",
        str(work / "manifests"),
        "--endpoint",
        emu.endpoint,
        "--project-id",
        process.PROJECT_ID,
        "--rate",
        f"{rates['show']:g}",
        "--threads",
        str(BASELINE_THREADS),
    ]
    bench_env = {**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    timed = process.run_timed(argv, env=bench_env, cwd=work)
    counts = dict(process.count_kinds(log.read_new()))
    if timed.returncode != 0:
        print(f"  unexpected exit {timed.returncode} from the SDK script:", file=sys.stderr)
        print(_tail(timed.stderr) or _tail(timed.stdout), file=sys.stderr)
    return Baseline(
        assets=planned.assets,
        wall_s=timed.wall_s,
        cpu_s=timed.cpu_s,
        max_rss_mb=timed.max_rss_mb,
        counts=counts,
        returncode=timed.returncode,
        changed=script_changed(timed.stdout),
        tool_wall_s=planned.wall_s,
        tool_changed=planned.changed,
    )


STARTUP_RUNS = 5


def run_startup(
    emu: process.Emulator, log: process.RequestLog, work: Path, env: dict[str, str]
) -> PlanStartup:
    """``plan`` of a single manifest, a few times: seconds from process start to first request."""
    one = work / "one"
    one.mkdir(exist_ok=True)
    first = min((work / "manifests").glob("*.yaml"))
    shutil.copyfile(first, one / first.name)
    result = PlanStartup(first_request_s=[], wall_s=[])
    for _ in range(STARTUP_RUNS):
        timed = process.run_timed(
            process.reconciler_argv(emu.endpoint, "plan", "one"), env=env, cwd=work
        )
        before, _, _ = process.phases(log.read_new(), timed.started_at, timed.wall_s)
        if timed.returncode not in (0, 2):
            print(
                f"  unexpected exit {timed.returncode} from a one-manifest plan:", file=sys.stderr
            )
            print(_tail(timed.stderr) or _tail(timed.stdout), file=sys.stderr)
        result.first_request_s.append(before)
        result.wall_s.append(timed.wall_s)
    return result


def format_startup(s: PlanStartup) -> str:
    return (
        f"a one-manifest plan sends its first request after "
        f"{s.median_first_request_s:.3f} s and ends after {statistics.median(s.wall_s):.3f} s "
        f"(medians of {len(s.wall_s)} runs)"
    )


def format_baseline(b: Baseline) -> str:
    return (
        f"the SDK script at {b.assets:,} assets ({b.threads} threads, one show_asset "
        f"per manifest, {b.counts.get('show', 0)} requests, {b.counts.get('throttled', 0)} 429) "
        f"took {b.wall_s:.2f} s and reports {_count(b.changed)} changed; reconciler plan took "
        f"{b.tool_wall_s:.2f} s and reports {_count(b.tool_changed)} to change: "
        f"{b.ratio:.1f}x faster (exit {b.returncode})"
    )


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def fresh_reads(entries: Sequence[dict[str, Any]]) -> int:
    """Read requests that asked only for assets this phase then wrote: apply's reads right
    before each PUT attempt (a retry re-reads too) and its read-backs, whether by list or by
    show (the plan's own reads page through the project)."""
    written = {
        str(e["path"]).rsplit("/", 1)[1] for e in entries if process.request_kind(e) == "update"
    }
    count = 0
    for entry in entries:
        kind = process.request_kind(entry)
        if kind == "show":
            ids = {str(entry["path"]).split("?", 1)[0].rstrip("/").rsplit("/", 1)[1]}
        else:
            ids = {value for key, value in entry.get("query") or () if key == "asset_id"}
        if kind in ("list", "show") and ids and ids <= written:
            count += 1
    return count


# --- several targets in one run --------------------------------------------------------------

TARGET_NAMES = ("alpha", "beta")


def bench_targets(n: int, root: Path, *, latency_ms: int, rates: dict[str, float]) -> list[Row]:
    """Two targets of ``n`` assets each (two emulator processes, two projects, two credential
    families): a plan of one target's manifests, then of both targets' in one run.  Each target
    has its own rate limits, so the floor of the run is the slower target's, not the sum."""
    work = root / f"targets-{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rate_arg = ",".join(f"{k}={v:g}" for k, v in rates.items())
    env = process.credentials_env()
    prefix = {TARGET_NAMES[0]: "", TARGET_NAMES[1]: "BETA_"}
    for name in TARGET_NAMES:
        if prefix[name]:
            env[f"{prefix[name]}HUAWEICLOUD_SDK_AK"] = process.AK
            env[f"{prefix[name]}HUAWEICLOUD_SDK_SK"] = process.SK
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        logs: dict[str, process.RequestLog] = {}
        config = ["targets:"]
        for index, name in enumerate(TARGET_NAMES):
            project = f"{process.PROJECT_ID}-{name}"
            live = workload.make_updatable(load_generator()(n, seed=n + index, project_id=project))
            seed = work / f"seed-{name}.json"
            workload.write_seed(live, seed)
            workload.write_manifests(
                live, work / "manifests" / name, drift_ratio=0.01, seed=n + index, target=name
            )
            emu_env = {**env, "HUAWEICLOUD_SDK_PROJECT_ID": project}
            emu = stack.enter_context(
                process.emulator(
                    work,
                    seed=seed,
                    latency_ms=latency_ms,
                    rate_limits=rate_arg,
                    record=work / f"requests-{name}.jsonl",
                    env=emu_env,
                )
            )
            logs[name] = process.RequestLog(emu.record)
            logs[name].read_new()
            config += [
                f"  {name}:",
                f"    endpoint: {emu.endpoint}",
                f"    project_id: {project}",
                f"    region: {process.REGION}",
                *([f"    credentials_env_prefix: {prefix[name]}"] if prefix[name] else []),
            ]
        (work / "reconciler.yaml").write_text("\n".join(config) + "\n", encoding="utf-8")

        def phase(label: str, assets: int, *args: str) -> None:
            argv = [sys.executable, "-m", "reconciler", *args]
            timed = process.run_timed(argv, env=env, cwd=work)
            per_target = {name: log.read_new() for name, log in logs.items()}
            counts: dict[str, int] = {}
            for entries in per_target.values():
                for kind, count in process.count_kinds(entries).items():
                    counts[kind] = counts.get(kind, 0) + count
            floors = [
                floor_seconds(dict(process.count_kinds(entries)), rates)
                for entries in per_target.values()
            ]
            every = [e for entries in per_target.values() for e in entries]
            every.sort(key=lambda e: process.entry_time(e) or 0.0)
            row = Row(
                assets=assets,
                command=label,
                counts=counts,
                wall_s=timed.wall_s,
                floor_s=max(floors),
                cpu_s=timed.cpu_s,
                max_rss_mb=timed.max_rss_mb,
                returncode=timed.returncode,
                split=process.phases(every, timed.started_at, timed.wall_s),
                measured_at=now_utc(),
            )
            rows.append(row)
            print(format_row(row), flush=True)
            print(f"  {label}: requests {windows(per_target, timed.started_at)}", flush=True)
            if timed.returncode != 2:
                print(f"  unexpected exit {timed.returncode} from {label}:", file=sys.stderr)
                print(_tail(timed.stderr) or _tail(timed.stdout), file=sys.stderr)

        manifests = str(work / "manifests")
        # The baseline is one target's repository: its manifests alone, loaded and planned.
        phase("plan, 1 target", n, "plan", f"{manifests}/{TARGET_NAMES[0]}", "--detailed-exitcode")
        phase("plan, 2 targets", 2 * n, "plan", manifests, "--detailed-exitcode")
    return rows


def windows(per_target: dict[str, list[dict[str, Any]]], started_at: float) -> str:
    """When each target's requests ran, in seconds from the start of the process: overlapping
    windows show the targets were read at the same time, not one after the other."""
    parts = []
    for name, entries in per_target.items():
        times = [t - started_at for t in map(process.entry_time, entries) if t is not None]
        if times:
            parts.append(f"{name} {min(times):.2f}-{max(times):.2f} s")
    return ", ".join(parts) or "none"


def target_verdicts(rows: Sequence[Row]) -> list[str]:
    """Two targets planned in one run against one target alone (each its own tenant)."""
    one = next((r for r in rows if r.command == "plan, 1 target"), None)
    two = next((r for r in rows if r.command == "plan, 2 targets"), None)
    if one is None or two is None:
        return []
    return [
        f"- two targets of {one.assets:,} in one plan: {two.wall_s:.2f} s, one target alone "
        f"{one.wall_s:.2f} s ({two.wall_s / one.wall_s:.2f}x; paced fetching "
        f"{two.split[1]:.2f} s vs {one.split[1]:.2f} s)"
    ]


def _profile_plan(endpoint: str, work: Path, env: dict[str, str]) -> None:
    """A plan under pyinstrument; the text report lands in the work directory."""
    out = work / "plan-profile.txt"
    argv = [
        sys.executable,
        "-m",
        "pyinstrument",
        "-r",
        "text",
        "--show-all",
        "-o",
        str(out),
        "-m",
        *process.reconciler_argv(endpoint, "plan", "manifests")[2:],
    ]
    timed = process.run_timed(argv, env=env, cwd=work)
    print(f"  profile of plan ({timed.wall_s:.1f} s wall) written to {out}", flush=True)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


HEADER = (
    "| assets | command | list | show | update | 429 | wall s | floor s | ratio "
    "| before / during / after requests s | CPU ms/asset | peak RSS MB | exit |"
)
RULE = "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"


def format_row(row: Row) -> str:
    c = row.counts
    return (
        f"| {row.assets:,} | {row.command} | {c.get('list', 0)} | {c.get('show', 0)} "
        f"| {c.get('update', 0)} | {c.get('throttled', 0)} | {row.wall_s:.2f} "
        f"| {row.floor_s:.2f} | {row.ratio:.2f} "
        f"| {row.split[0]:.2f} / {row.split[1]:.2f} / {row.split[2]:.2f} "
        f"| {row.cpu_ms_per_asset:.3f} "
        f"| {row.max_rss_mb:.0f} | {row.returncode} |"
    )


@dataclass(frozen=True)
class Target:
    """One figure of issue 18's targets table: which row, which figure, and its bound."""

    figure: str
    assets: int  # 0: the row of ``command`` whatever its size
    command: str
    # ratio | cpu_ms_per_asset | peak_rss_mb | baseline_ratio | first_request_s | landed_share
    metric: str
    bound: float
    before: str  # the figure measured when the target was set
    at_most: bool = True

    def measured(self, results: Results) -> float | None:
        baseline, startup = results.baseline, results.startup
        if self.metric == "baseline_ratio":
            return baseline.ratio if baseline and baseline.assets == self.assets else None
        if self.metric == "first_request_s":
            return startup.median_first_request_s if startup else None
        row = next(
            (r for r in results.rows if r.command == self.command and self.assets in (0, r.assets)),
            None,
        )
        if row is None:
            return None
        if self.metric == "landed_share":
            return row.landed / row.to_land if row.landed is not None and row.to_land else None
        value = {
            "ratio": row.ratio,
            "cpu_ms_per_asset": row.cpu_ms_per_asset,
            "peak_rss_mb": row.max_rss_mb,
        }[self.metric]
        return float(value)

    def met(self, value: float) -> bool:
        return value <= self.bound if self.at_most else value >= self.bound

    def show(self, value: float) -> str:
        if self.metric == "cpu_ms_per_asset":
            return f"{value:.3f} ms"
        if self.metric == "peak_rss_mb":
            return f"{value:,.0f} MB"
        if self.metric == "baseline_ratio":
            return f"{value:.1f}x"
        if self.metric == "first_request_s":
            return f"{value:.2f} s"
        if self.metric == "landed_share":
            return f"{value:.1%}"  # 199 of 200 is 99.5%, not a rounded 100%
        return f"{value:.2f}"

    @property
    def wanted(self) -> str:
        sign = "<=" if self.at_most else ">="
        if self.metric == "cpu_ms_per_asset":
            return f"{sign} {self.bound} ms"
        if self.metric == "peak_rss_mb":
            return f"{sign} {self.bound:,.0f} MB"
        if self.metric == "baseline_ratio":
            return f"{sign} {self.bound:g}x"
        if self.metric == "first_request_s":
            return f"{sign} {self.bound} s"
        if self.metric == "landed_share":
            return f"{sign} {self.bound:.0%}"
        return f"{sign} {self.bound}"


TARGETS = (
    Target("plan 10,000: wall / floor", 10_000, "plan", "ratio", 0.9, "1.42"),
    Target("plan 10,000: CPU per asset", 10_000, "plan", "cpu_ms_per_asset", 0.3, "0.63 ms"),
    Target("plan 10,000: peak RSS", 10_000, "plan", "peak_rss_mb", 200, "179 MB"),
    Target("plan 100,000: wall / floor", 100_000, "plan", "ratio", 1.0, "2.05"),
    Target("plan 100,000: peak RSS", 100_000, "plan", "peak_rss_mb", 600, "1,309 MB"),
    Target("apply 10,000 with 1% changed: wall / floor", 10_000, "apply", "ratio", 1.1, "1.16"),
    Target(
        "this tool vs the per-asset SDK script, 1,000 assets, same run",
        BASELINE_SIZE,
        "plan",
        "baseline_ratio",
        50,
        "36x",
        at_most=False,
    ),
    Target("plan of one manifest: first request after", 1, "plan", "first_request_s", 0.35, "-"),
    # issue 22: the service really allows half the configured rates
    Target("half quota, plan: wall / real floor", 0, "plan" + HALF_SUFFIX, "ratio", 1.1, "1.17"),
    Target(
        "half quota, apply: wall / real floor",
        0,
        "apply" + HALF_SUFFIX,
        "ratio",
        1.15,
        "-",
    ),
    Target(
        "half quota, apply: changes landed",
        0,
        "apply" + HALF_SUFFIX,
        "landed_share",
        1.0,
        "98.5%",
        at_most=False,
    ),
)


def target_table(results: Results) -> list[str]:
    """The targets of issue 18 with the figures measured here (or that a size was not run)."""
    lines = [
        "| figure | when set | target | measured | verdict |",
        "|---|---:|---:|---:|---|",
    ]
    for target in TARGETS:
        value = target.measured(results)
        if value is None:
            measured, verdict = "-", "not measured"
        else:
            measured, verdict = target.show(value), "met" if target.met(value) else "NOT met"
        lines.append(
            f"| {target.figure} | {target.before} | {target.wanted} | {measured} | {verdict} |"
        )
    return lines


def verdicts(results: Results) -> list[str]:
    """One line per target: figure, measured value, met or not; and apply's fresh reads."""
    out = [
        f"- apply of {r.assets:,}: {r.fresh_reads} read request(s) asked for the written assets "
        f"right before their PUT attempts ({r.fresh_reads / DEFAULT_RATES['list']:.2f} s of its "
        f"{r.floor_s:.2f} s floor)"
        for r in results.rows
        if r.command == "apply"
    ]
    out += [
        f"- {r.command} of {r.assets:,}: {r.landed} of {r.to_land} changes landed, "
        f"{r.counts.get('throttled', 0)} 429(s), {r.fresh_reads} fresh read(s), "
        f"{r.wall_s:.2f} s for a real floor of {r.floor_s:.2f} s ({r.ratio:.2f}x)"
        + (
            f"; PUTs from first to last {r.put_window_s:.2f} s for "
            f"{(r.puts_accepted - 1) / HALF_RATES['update']:.2f} s at the real update rate"
            if r.put_window_s is not None and r.puts_accepted
            else ""
        )
        for r in results.rows
        if r.command == "apply" + HALF_SUFFIX
    ]
    for target in TARGETS:
        value = target.measured(results)
        if value is not None:
            mark = "met" if target.met(value) else "NOT met"
            out.append(f"- {target.figure} {target.wanted}: {target.show(value)} ({mark})")
    return out


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}){mem}, "
        f"Python {platform.python_version()}"
    )


def report(results: Results, *, latency_ms: int, rates: dict[str, float], priority: int = 0) -> str:
    rate_text = ", ".join(f"{k} {v:g}/s" for k, v in rates.items())
    runs: dict[str, list[int]] = {}
    for row in results.rows:
        sizes = runs.setdefault(row.measured_at or "?", [])
        if row.assets not in sizes:
            sizes.append(row.assets)
    when = "; ".join(
        f"{' and '.join(f'{n:,}' for n in sizes)} assets {stamp}" for stamp, sizes in runs.items()
    )
    lines = [
        f"Measured on {machine_info()}: {when}.",
        f"Emulator: its own process, rate limits {rate_text}, latency {latency_ms} ms; "
        "1% of manifests drifted"
        + (f"; emulator and runs at niceness {priority:+d}." if priority else "."),
        "",
        HEADER,
        RULE,
        *(format_row(r) for r in results.rows if not r.command.endswith(HALF_SUFFIX)),
        "",
        *target_verdicts(results.rows),
        *_rules_verdict(results.rows),
        *_changed_verdict(results.rows),
        *half_quota_table(results.rows),
    ]
    if results.baseline is not None:
        lines += [
            f"Baseline, {results.baseline.measured_at}: {format_baseline(results.baseline)}.",
            "",
        ]
    if results.startup is not None:
        lines += [
            f"Start-up, {results.startup.measured_at}: {format_startup(results.startup)}.",
            "",
        ]
    lines += ["Targets (issues 18 and 22):", "", *target_table(results)]
    return "\n".join(lines)


def _rules_verdict(rows: Sequence[Row]) -> list[str]:
    from bench.rules_rows import rules_verdict  # it imports this module

    return rules_verdict(list(rows))


def _changed_verdict(rows: Sequence[Row]) -> list[str]:
    from bench.changed_rows import changed_verdict  # it imports this module

    return changed_verdict(list(rows))


def merge_previous(results: Results, previous: Path = RESULTS_JSON) -> Results:
    """This run's results, plus the latest rows of the sizes and commands it did not measure
    (and the baseline and start-up figures, if it did not measure them) from ``previous``: so
    that ``--sizes 100000`` adds its rows to the default run's instead of replacing them."""
    old = Results()
    if previous.exists():
        try:
            data = json.loads(previous.read_text(encoding="utf-8"))
            measured = {(r.assets, r.command) for r in results.rows}
            old.rows = [
                r
                for r in map(Row.from_json, data.get("rows", ()))
                if (r.assets, r.command) not in measured
            ]
            if data.get("baseline"):
                old.baseline = Baseline.from_json(data["baseline"])
            if data.get("startup"):
                old.startup = PlanStartup.from_json(data["startup"])
        except (ValueError, KeyError, TypeError) as exc:
            print(f"ignoring {previous}: {exc}", file=sys.stderr)
    old.add(results)
    order = {name: i for i, name in enumerate(COMMAND_ORDER)}
    old.rows.sort(key=lambda r: (r.assets, order.get(r.command, len(order)), r.command))
    return old


def results_json(
    results: Results, *, latency_ms: int, rates: dict[str, float], priority: int = 0
) -> dict[str, Any]:
    """Every row, the baseline and start-up, machine-readable (``--json FILE``, results.json)."""
    targets = []
    for target in TARGETS:
        value = target.measured(results)
        targets.append(
            {
                "figure": target.figure,
                "target": target.wanted,
                "measured": None if value is None else round(value, 4),
                "met": None if value is None else target.met(value),
            }
        )
    return {
        "machine": machine_info(),
        "emulator": {
            "latency_ms": latency_ms,
            "rate_limits": rates,
            "drift_ratio": 0.01,
            "priority": priority,
            "half_quota_rate_limits": HALF_RATES,
        },
        "rows": [r.to_json() for r in results.rows],
        "baseline": results.baseline.to_json() if results.baseline else None,
        "startup": results.startup.to_json() if results.startup else None,
        "targets": targets,
    }


def write_json(data: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_results(section: str, path: Path = RESULTS) -> None:
    """Replace the generated section of results.md, keeping the findings written around it."""
    block = f"{BEGIN}\n{section}\n{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated asset counts")
    parser.add_argument("--latency-ms", type=int, default=30)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile plan with pyinstrument (implies --keep)",
    )
    parser.add_argument(
        "--targets-size",
        type=int,
        default=10000,
        help="assets per target of the two-target plan (0 to skip it)",
    )
    parser.add_argument("--keep", action="store_true", help="keep bench/out/ for inspection")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/results.md")
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="write this run's rows and baseline as JSON"
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=0,
        metavar="N",
        help="niceness added to the emulator and every timed run (negative: root only), so "
        "that other work on a shared machine does not starve them",
    )
    parser.add_argument(
        "--plan-only", action="store_true", help="time only the first plan of each size"
    )
    parser.add_argument(
        "--half-size",
        type=int,
        default=10000,
        metavar="N",
        help="assets of the half-quota rows (the emulator allows half the configured rates; "
        "0 to skip them)",
    )
    parser.add_argument(
        "--half-changes",
        type=int,
        default=HALF_CHANGES,
        metavar="N",
        help="assets the half-quota apply changes",
    )
    parser.add_argument(
        "--state-size",
        type=int,
        default=10000,
        metavar="N",
        help="assets of the state backend rows (an apply of 100 changes with the SQLite and "
        "with a PostgreSQL state; 0 to skip them)",
    )
    parser.add_argument(
        "--rules-size",
        type=int,
        default=10000,
        metavar="N",
        help="assets of the ownership and policy rows (a plan with 5 ignore and 5 policy rules "
        "and without them; 0 to skip them)",
    )
    parser.add_argument(
        "--changed-size",
        type=int,
        default=100000,
        metavar="N",
        help="assets of the --changed-since row (a plan of 5 documents changed since the last "
        "commit of a git repository of N manifests; 0 to skip it)",
    )
    parser.add_argument(
        "--watch-size",
        type=int,
        default=100000,
        metavar="N",
        help="assets of the watch rows (a watch's first read, then 10 incremental cycles, 10 "
        "assets edited before every other one; 0 to skip them)",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help=f"skip the SDK script at {BASELINE_SIZE:,} assets (it takes about a minute)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    process.PRIORITY = args.priority
    process.compiled_like_an_install()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    keep = args.keep or args.profile  # the profile report lives in the work directory
    root = Path(__file__).parent / "out" if keep else Path(tempfile.mkdtemp(prefix="bench-"))
    results = Results()
    print(HEADER)
    print(RULE, flush=True)
    try:
        for i, n in enumerate(sizes):
            results.add(
                bench_size(
                    n,
                    root,
                    latency_ms=args.latency_ms,
                    rates=DEFAULT_RATES,
                    profile=args.profile,
                    baseline=n == BASELINE_SIZE and not args.no_baseline,
                    startup=i == 0,
                    plan_only=args.plan_only,
                )
            )
        if args.targets_size:
            results.rows.extend(
                bench_targets(
                    args.targets_size, root, latency_ms=args.latency_ms, rates=DEFAULT_RATES
                )
            )
        if args.half_size:
            results.rows.extend(
                bench_half_quota(
                    args.half_size,
                    root,
                    latency_ms=args.latency_ms,
                    changes=args.half_changes,
                    plan_only=args.plan_only,
                )
            )
        if args.rules_size:
            from bench.rules_rows import bench_rules

            results.rows.extend(
                bench_rules(args.rules_size, root, latency_ms=args.latency_ms, rates=DEFAULT_RATES)
            )
        if args.changed_size:
            from bench.changed_rows import bench_changed

            results.rows.extend(
                bench_changed(
                    args.changed_size, root, latency_ms=args.latency_ms, rates=DEFAULT_RATES
                )
            )
        if args.state_size and not args.plan_only:
            from bench.state_rows import bench_state_backends

            results.rows.extend(
                bench_state_backends(
                    args.state_size, root, latency_ms=args.latency_ms, rates=DEFAULT_RATES
                )
            )
        if args.watch_size and not args.plan_only:
            from bench.watch_rows import bench_watch

            results.rows.extend(
                bench_watch(args.watch_size, root, latency_ms=args.latency_ms, rates=DEFAULT_RATES)
            )
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    from bench.changed_rows import changed_verdict
    from bench.rules_rows import rules_verdict
    from bench.state_rows import state_verdict
    from bench.watch_rows import watch_verdict

    print(
        "\n".join(
            [
                *verdicts(results),
                *target_verdicts(results.rows),
                *state_verdict(results.rows),
                *rules_verdict(results.rows),
                *changed_verdict(results.rows),
                *watch_verdict(results.rows),
            ]
        )
    )
    options: dict[str, Any] = {
        "latency_ms": args.latency_ms,
        "rates": DEFAULT_RATES,
        "priority": args.priority,
    }
    if args.json is not None:
        write_json(results_json(results, **options), args.json)
        print(f"\nrows written to {args.json}")
    started = startup.report(startup.measure())
    print("\n" + started)
    if not args.no_write:
        merged = merge_previous(results)
        write_json(results_json(merged, **options), RESULTS_JSON)
        write_results(report(merged, **options) + "\n\n" + started)
        print(f"\nwritten to {RESULTS} and {RESULTS_JSON}")
    failed = [r for r in results.rows if r.returncode not in (0, 2)]
    if results.baseline is not None and results.baseline.returncode != 0:
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
