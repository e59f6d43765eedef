"""The state backend rows of ``make bench``: one apply of 100 changes at 10,000 assets with the
default SQLite state, and the same apply with a PostgreSQL state (a throwaway server started as the
test suite starts it, ``tests/pg_server.py``), each against its own emulator seeded alike, in one
run so that the two walls compare.  The PostgreSQL row should be within 5% of the SQLite one: the
state is touched per write (the lock check, the write-only record), never per read."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import process, workload
from bench.run import Row, _tail, format_row, fresh_reads, load_generator, now_utc

STATE_CHANGES = 100
SUFFIX = ", {backend} state"


@contextmanager
def postgres_url() -> Iterator[str]:
    """A fresh database on a throwaway local server, stopped when the block ends."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import pg_server  # type: ignore[import-not-found]  # the suite's server (tests/)

    server = pg_server.start_server()
    try:
        yield server.url(server.create_database())
    finally:
        server.stop()


def bench_state_backends(
    n: int, root: Path, *, latency_ms: int, rates: dict[str, float]
) -> list[Row]:
    """Apply :data:`STATE_CHANGES` changes to ``n`` assets once per backend."""
    rows: list[Row] = []
    stamp = now_utc()
    live = workload.make_updatable(load_generator()(n, seed=n, project_id=process.PROJECT_ID))
    rate_arg = ",".join(f"{k}={v:g}" for k, v in rates.items())
    with postgres_url() as url:
        for backend, state in (("SQLite", None), ("PostgreSQL", url)):
            work = root / f"state-{backend.lower()}-{n}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            seed = work / "seed.json"
            workload.write_seed(live, seed)
            workload.write_manifests(
                live, work / "manifests", drift_ratio=min(1.0, STATE_CHANGES / n), seed=n
            )
            env = process.credentials_env()
            env.pop("RECONCILER_STATE", None)
            if state is not None:
                env["RECONCILER_STATE"] = state
            with process.emulator(
                work, seed=seed, latency_ms=latency_ms, rate_limits=rate_arg
            ) as emu:
                log = process.RequestLog(emu.record)
                log.read_new()
                timed = process.run_timed(
                    process.reconciler_argv(emu.endpoint, "apply", "manifests", "--auto-approve"),
                    env=env,
                    cwd=work,
                )
                entries = log.read_new()
                row = Row.measured(
                    n,
                    "apply" + SUFFIX.format(backend=backend),
                    timed,
                    entries,
                    rates,
                    fresh_reads=fresh_reads(entries),
                    measured_at=stamp,
                )
                rows.append(row)
                print(format_row(row), flush=True)
                if timed.returncode != 0:
                    print(f"  unexpected exit {timed.returncode}:", file=sys.stderr)
                    print(_tail(timed.stderr) or _tail(timed.stdout), file=sys.stderr)
    return rows


def state_verdict(rows: list[Row]) -> list[str]:
    """The PostgreSQL apply's wall as a ratio of the SQLite one (goal: within 5%)."""
    walls = {r.command: r.wall_s for r in rows if "state" in r.command}
    sqlite = next((w for c, w in walls.items() if "SQLite" in c), None)
    postgres = next((w for c, w in walls.items() if "PostgreSQL" in c), None)
    if not sqlite or postgres is None:
        return []
    ratio = postgres / sqlite
    verdict = "within" if ratio <= 1.05 else "OUTSIDE"
    return [f"PostgreSQL state apply: {ratio:.3f}x the SQLite one ({verdict} the 5% goal)"]
