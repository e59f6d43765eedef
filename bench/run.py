"""``make bench``: plan and apply over 1,000 and 10,000 assets against a real emulator process.

For each size: generate live assets, seed an emulator (its own process, published rate limits,
realistic latency), write manifests that match except for 1% drifted, then time
``reconciler plan`` and ``reconciler apply --auto-approve`` as whole processes, and a final plan
that must show no changes.  Requests are counted from the emulator's request log; the rate-limit
floor is what the service's limits alone would cost.  The table is printed and written to
bench/results.md between markers, leaving the hand-written findings there untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import process, startup, workload

RESULTS = Path(__file__).with_name("results.md")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
DEFAULT_RATES = {"list": 20.0, "show": 20.0, "update": 10.0}
# Targets for a plan of 10,000 assets (docs/performance.md).
TARGET_RATIO, TARGET_CPU_MS, TARGET_RSS_MB = 1.3, 0.5, 300.0


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
    # apply: list requests that read the written assets right before their PUTs
    fresh_reads: int = 0

    @property
    def ratio(self) -> float:
        return self.wall_s / self.floor_s if self.floor_s else float("nan")

    @property
    def cpu_ms_per_asset(self) -> float:
        return self.cpu_s * 1000 / self.assets


def floor_seconds(counts: dict[str, int], rates: dict[str, float]) -> float:
    """Time the service's per-API limits alone impose: requests / allowed rate, summed."""
    return sum(counts.get(kind, 0) / rate for kind, rate in rates.items())


def load_generator() -> Callable[..., list[dict[str, Any]]]:
    """The emulator's realistic asset generator (one source of truth for test data)."""
    from reconciler.emulator import generate_assets

    return generate_assets


def bench_size(
    n: int, root: Path, *, latency_ms: int, rates: dict[str, float], profile: bool
) -> list[Row]:
    work = root / f"n{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    live = workload.make_updatable(load_generator()(n, seed=n, project_id=process.PROJECT_ID))
    seed = work / "seed.json"
    workload.write_seed(live, seed)
    load = workload.write_manifests(live, work / "manifests", drift_ratio=0.01, seed=n)
    rate_arg = ",".join(f"{k}={v:g}" for k, v in rates.items())
    env = process.credentials_env()
    rows: list[Row] = []
    with process.emulator(work, seed=seed, latency_ms=latency_ms, rate_limits=rate_arg) as emu:
        log = process.RequestLog(emu.record)
        log.read_new()  # readiness probes are not part of any phase

        def phase(name: str, *args: str, expect: Sequence[int]) -> process.Timed:
            timed = process.run_timed(
                process.reconciler_argv(emu.endpoint, *args), env=env, cwd=work
            )
            entries = log.read_new()
            counts = dict(process.count_kinds(entries))
            row = Row(
                assets=n,
                command=name,
                counts=counts,
                wall_s=timed.wall_s,
                floor_s=floor_seconds(counts, rates),
                cpu_s=timed.cpu_s,
                max_rss_mb=timed.max_rss_mb,
                returncode=timed.returncode,
                split=process.phases(entries, timed.started_at, timed.wall_s),
                fresh_reads=fresh_reads(entries),
            )
            rows.append(row)
            print(format_row(row), flush=True)
            if timed.returncode not in expect:
                print(f"  unexpected exit {timed.returncode} from {name}:", file=sys.stderr)
                print(_tail(timed.stderr) or _tail(timed.stdout), file=sys.stderr)
            return timed

        phase("plan", "plan", "manifests", "--detailed-exitcode", expect=(2,))
        if profile:
            _profile_plan(emu.endpoint, work, env)
            log.read_new()
        applied = phase("apply", "apply", "manifests", "--auto-approve", expect=(0,))
        if applied.returncode == 0 and len(load.drifted) > 0:
            changed = sum(1 for e in log.entries if process.request_kind(e) == "update")
            if changed != len(load.drifted):
                print(f"  expected {len(load.drifted)} PUTs, saw {changed}", file=sys.stderr)
        phase("re-plan", "plan", "manifests", "--detailed-exitcode", expect=(0,))
    return rows


def fresh_reads(entries: Sequence[dict[str, Any]]) -> int:
    """List requests that asked only for assets this phase then wrote: apply's reads right
    before its PUTs (the plan's own reads page through the project)."""
    written = {
        str(e["path"]).rsplit("/", 1)[1] for e in entries if process.request_kind(e) == "update"
    }
    count = 0
    for entry in entries:
        ids = {value for key, value in entry.get("query") or () if key == "asset_id"}
        if process.request_kind(entry) == "list" and ids and ids <= written:
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


def verdicts(rows: Sequence[Row]) -> list[str]:
    """The issue's targets, judged on the largest plan measured."""
    plans = [r for r in rows if r.command == "plan"]
    if not plans:
        return []
    big = max(plans, key=lambda r: r.assets)

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    reads = [
        f"- apply of {r.assets:,}: {r.fresh_reads} list request(s) read the written assets right "
        f"before their PUTs ({r.fresh_reads / DEFAULT_RATES['list']:.2f} s of its "
        f"{r.floor_s:.2f} s floor)"
        for r in rows
        if r.command == "apply"
    ]
    return [
        *reads,
        f"- plan of {big.assets:,} within {TARGET_RATIO}x of its rate-limit floor: "
        f"{big.ratio:.2f}x ({mark(big.ratio <= TARGET_RATIO)})",
        f"- under {TARGET_CPU_MS} ms CPU per asset: {big.cpu_ms_per_asset:.3f} ms "
        f"({mark(big.cpu_ms_per_asset < TARGET_CPU_MS)})",
        f"- peak RSS under {TARGET_RSS_MB:.0f} MB: {big.max_rss_mb:.0f} MB "
        f"({mark(big.max_rss_mb < TARGET_RSS_MB)})",
    ]


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


def report(rows: Sequence[Row], *, latency_ms: int, rates: dict[str, float]) -> str:
    rate_text = ", ".join(f"{k} {v:g}/s" for k, v in rates.items())
    lines = [
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine_info()}.",
        f"Emulator: its own process, rate limits {rate_text}, latency {latency_ms} ms; "
        "1% of manifests drifted.",
        "",
        HEADER,
        RULE,
        *(format_row(r) for r in rows),
        "",
        "Targets (plan, largest size):",
        *verdicts(rows),
        *target_verdicts(rows),
    ]
    return "\n".join(lines)


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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    keep = args.keep or args.profile  # the profile report lives in the work directory
    root = Path(__file__).parent / "out" if keep else Path(tempfile.mkdtemp(prefix="bench-"))
    rows: list[Row] = []
    print(HEADER)
    print(RULE, flush=True)
    try:
        for n in sizes:
            rows.extend(
                bench_size(
                    n, root, latency_ms=args.latency_ms, rates=DEFAULT_RATES, profile=args.profile
                )
            )
        if args.targets_size:
            rows.extend(
                bench_targets(
                    args.targets_size, root, latency_ms=args.latency_ms, rates=DEFAULT_RATES
                )
            )
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    section = report(rows, latency_ms=args.latency_ms, rates=DEFAULT_RATES)
    print()
    print("\n".join([*verdicts(rows), *target_verdicts(rows)]))
    started = startup.report(startup.measure())
    print("\n" + started)
    section += "\n\n" + started
    if not args.no_write:
        write_results(section)
        print(f"\nwritten to {RESULTS}")
    failed = [r for r in rows if r.returncode not in (0, 2)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
