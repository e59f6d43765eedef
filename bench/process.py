"""Child processes for the benchmark: the emulator as a real server, and timed CLI runs.

CPU time and peak RSS come from ``os.wait4`` on the child itself, so each figure belongs to exactly
one ``reconciler`` process (no mixing with the emulator or with earlier runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

PROJECT_ID = "bench-project"
# The client paces to this region's published limits, the ones the emulator enforces here.
REGION = "cn-north-4"
AK = "BENCHAK0000000000000"
SK = "bench-secret-key-never-printed"


def compiled_like_an_install() -> None:
    """Make timed runs load compiled bytecode, as an installed package does (pip compiles every
    module when it installs the wheel).  The source tree is compiled once here, and
    ``PYTHONDONTWRITEBYTECODE``, which would have every run compile every module of the tool
    again (about 60 ms of each start-up), is dropped for the processes started from now on."""
    import compileall

    import reconciler

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    compileall.compile_dir(str(Path(reconciler.__file__).parent), quiet=1)


def credentials_env() -> dict[str, str]:
    """The environment that drives both the emulator and the client (docs/configuration.md)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_SDK_", "HW_"))}
    env.update(
        HUAWEICLOUD_SDK_AK=AK,
        HUAWEICLOUD_SDK_SK=SK,
        HUAWEICLOUD_SDK_PROJECT_ID=PROJECT_ID,
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    return env


PROBE_AGENT = "bench-readiness-probe"


def is_probe(entry: Mapping[str, Any]) -> bool:
    """A readiness probe of this harness, not a request of the code under test."""
    headers = entry.get("headers") or {}
    return bool(headers.get("user-agent") == PROBE_AGENT)


# Added to the niceness of every process the benchmark starts (``--priority``): negative values
# (root only) keep a busy shared machine's other work from starving the emulator and the run.
PRIORITY = 0


def _prioritized() -> None:
    if PRIORITY:
        os.nice(PRIORITY)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Emulator:
    """A running ``reconciler emulator serve`` process."""

    process: subprocess.Popen[bytes]
    port: int
    record: Path
    log: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _wait_ready(emu: Emulator, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = f"{emu.endpoint}/v1/{PROJECT_ID}/digital-assets"
    while time.monotonic() < deadline:
        if emu.process.poll() is not None:
            raise RuntimeError(
                f"emulator exited with {emu.process.returncode}: {emu.log.read_text()[-2000:]}"
            )
        try:
            # any HTTP answer (401 included) means it serves
            httpx.get(url, timeout=1.0, headers={"User-Agent": PROBE_AGENT})
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"emulator did not answer on port {emu.port} within {timeout:.0f} s")


@contextlib.contextmanager
def emulator(
    workdir: Path,
    *,
    seed: Path | None = None,
    db: Path | None = None,
    port: int | None = None,
    latency_ms: int = 30,
    rate_limits: str = "list=20,show=20,update=10",
    extra: Sequence[str] = (),
    record: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Emulator]:
    """Run the emulator as its own process on a free loopback port until the block ends."""
    port = port or free_port()
    record = record or workdir / "requests.jsonl"
    log = workdir / f"emulator-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "reconciler",
        "emulator",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
        "--rate-limits",
        rate_limits,
        "--record",
        str(record),
        *(["--seed", str(seed)] if seed else []),
        *(["--db", str(db)] if db else []),
        *extra,
    ]
    with log.open("ab") as log_file:
        proc = subprocess.Popen(
            cmd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else credentials_env(),
            preexec_fn=_prioritized if PRIORITY else None,
        )
    emu = Emulator(process=proc, port=port, record=record, log=log)
    try:
        _wait_ready(emu, timeout=60)
        yield emu
    finally:
        stop(emu)


def stop(emu: Emulator) -> None:
    if emu.process.poll() is None:
        emu.process.terminate()
        try:
            emu.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emu.process.kill()
            emu.process.wait()


# A bucket of N requests at N per second is full again one second after its last request.
REFILL_SECONDS = 1.2


@dataclass
class Timed:
    """One finished child process: exit code, output, wall and CPU seconds, peak RSS."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    started_at: float  # epoch seconds, to place the emulator's request times in the run


def run_timed(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, stdin: bytes | None = None
) -> Timed:
    """Run ``argv`` to completion; rusage is the child's own (``os.wait4``).

    It starts :data:`REFILL_SECONDS` after the call: runs follow each other against one
    emulator, and each must find the service's rate buckets full, as a run started by hand or
    by a pipeline does (a plan started 0.4 s after another met a half-empty bucket and 429s)."""
    time.sleep(REFILL_SECONDS)
    out_path = cwd / ".timed.out"
    err_path = cwd / ".timed.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started_at = time.time()
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env),
            cwd=cwd,
            preexec_fn=_prioritized if PRIORITY else None,
        )
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Timed(
        argv=list(argv),
        returncode=proc.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        started_at=started_at,
    )


def reconciler_argv(endpoint: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "reconciler",
        "--endpoint",
        endpoint,
        "--region",
        REGION,
        "--project-id",
        PROJECT_ID,
        *args,
    ]


def request_kind(entry: Mapping[str, Any]) -> str:
    """list / show / update / other, from a request-log entry's method and path."""
    method = str(entry.get("method", "")).upper()
    path = str(entry.get("path", "")).split("?", 1)[0].rstrip("/")
    parts = path.split("/")
    if len(parts) >= 4 and parts[-1] == "digital-assets" and method == "GET":
        return "list"
    if len(parts) >= 5 and parts[-2] == "digital-assets":
        if method == "GET":
            return "show"
        if method == "PUT":
            return "update"
    return "other"


@dataclass
class RequestLog:
    """Entries of the emulator's ``--record`` file, read incrementally between phases."""

    path: Path
    offset: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)

    def read_new(self) -> list[dict[str, Any]]:
        """Entries appended since the previous call."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        new = [json.loads(line) for line in complete.splitlines() if line.strip()]
        new = [entry for entry in new if not is_probe(entry)]
        self.entries.extend(new)
        return new


def entry_time(entry: Mapping[str, Any]) -> float | None:
    """Epoch seconds of a request-log entry (RFC 3339 UTC with a ``Z``)."""
    stamp = entry.get("time")
    if not isinstance(stamp, str):
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def phases(
    entries: Sequence[Mapping[str, Any]], started_at: float, wall_s: float
) -> tuple[float, float, float]:
    """Seconds before the first request, from first to last request, and after the last."""
    times = [t for t in map(entry_time, entries) if t is not None]
    if not times:
        return wall_s, 0.0, 0.0
    first = max(0.0, min(times) - started_at)
    last = min(wall_s, max(times) - started_at)
    return first, max(0.0, last - first), max(0.0, wall_s - last)


def count_kinds(entries: Sequence[Mapping[str, Any]]) -> Counter[str]:
    """Requests by kind; throttled answers (429) are counted separately as ``throttled``."""
    counts: Counter[str] = Counter()
    for entry in entries:
        counts[request_kind(entry)] += 1
        if entry.get("status") == 429:
            counts["throttled"] += 1
    return counts
