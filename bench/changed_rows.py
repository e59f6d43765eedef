"""The ``--changed-since`` row of ``make bench``: a pull request's plan at N assets (one manifest
file per asset, committed to a git repository) after 5 documents were edited, against the
emulator seeded alike.  Its targets (design.md section 9): at most 2 requests and 2 s, where a
full plan of 100,000 assets costs 1,000 list requests and about 50 s."""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

from bench import process, workload
from bench.run import (
    Row,
    _tail,
    format_row,
    fresh_reads,
    load_generator,
    now_utc,
    plan_changed,
)

CHANGED_DOCUMENTS = 5
COMMAND = f"plan --changed-since, {CHANGED_DOCUMENTS} changed"


def _git(work: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
        cwd=work,
        check=True,
        capture_output=True,
    )


def _edit(path: Path, index: int) -> None:
    """A reviewed change to one manifest: a new description (one PUT)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["spec"]["asset_description"] = f"Changed in a pull request {index}"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _prepare(n: int, work: Path) -> None:
    """The seed, ``n`` manifests committed to a new repository, then
    :data:`CHANGED_DOCUMENTS` of them edited."""
    live = workload.make_updatable(load_generator()(n, seed=n, project_id=process.PROJECT_ID))
    workload.write_seed(live, work / "seed.json")
    manifests = work / "manifests"
    workload.write_manifests(live, manifests, drift_ratio=0.0, seed=n)
    del live
    _git(work, "init", "-q")
    _git(work, "add", "manifests")
    _git(work, "commit", "-q", "-m", "manifests")
    step = max(1, n // CHANGED_DOCUMENTS)
    for k in range(CHANGED_DOCUMENTS):
        _edit(manifests / f"asset-{k * step:05d}.yaml", k)


def bench_changed(n: int, root: Path, *, latency_ms: int, rates: dict[str, float]) -> list[Row]:
    """Commit ``n`` manifests, edit :data:`CHANGED_DOCUMENTS` of them, and time
    ``plan --changed-since HEAD``.

    The workload is made in a process of its own: a child started from this one reports this
    one's resident size as its own peak until it execs (``vfork``), and 100,000 generated
    assets would hide the plan's peak RSS behind the generator's."""
    work = root / f"changed-{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_prepare, n, work).result()
    seed = work / "seed.json"
    rate_arg = ",".join(f"{k}={v:g}" for k, v in rates.items())
    env = process.credentials_env()
    with process.emulator(work, seed=seed, latency_ms=latency_ms, rate_limits=rate_arg) as emu:
        log = process.RequestLog(emu.record)
        log.read_new()  # readiness probes are not part of the run
        argv = ("plan", "manifests", "--changed-since", "HEAD", "--detailed-exitcode")
        timed = process.run_timed(process.reconciler_argv(emu.endpoint, *argv), env=env, cwd=work)
        entries = log.read_new()
    row = Row.measured(
        n,
        COMMAND,
        timed,
        entries,
        rates,
        fresh_reads=fresh_reads(entries),
        changed=plan_changed(timed.stdout),
        measured_at=now_utc(),
    )
    print(format_row(row), flush=True)
    if timed.returncode != 2:
        print(f"  unexpected exit {timed.returncode} from {COMMAND}:", file=sys.stderr)
        print(_tail(timed.stderr) or _tail(timed.stdout), file=sys.stderr)
    return [row]


def changed_verdict(rows: list[Row]) -> list[str]:
    """The row against its targets: at most 2 requests and 2 s."""
    row = next((r for r in rows if r.command == COMMAND), None)
    if row is None:
        return []
    requests = sum(row.counts.get(kind, 0) for kind in ("list", "show", "update"))
    met = requests <= 2 and row.wall_s <= 2.0
    return [
        f"- {COMMAND} at {row.assets:,} assets: {requests} request{'' if requests == 1 else 's'}, "
        f"{row.wall_s:.2f} s, peak RSS {row.max_rss_mb:.0f} MB ({'meets' if met else 'MISSES'} "
        "the target: <= 2 requests, <= 2 s; a full plan: 1,000 requests, about 50 s)"
    ]
