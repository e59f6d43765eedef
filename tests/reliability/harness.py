"""Helpers of the reliability suite: a project of manifests, the emulator as a real process, and
the CLI as a real process.  Everything here goes over real sockets on 127.0.0.1; the emulator keeps
its state in a SQLite file so that it can be killed and restarted mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import process, workload


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def assert_clean(self) -> None:
        """An expected failure is one clear message: never a traceback."""
        assert "Traceback (most recent call last)" not in self.output, self.output


@dataclass
class Measured(CliResult):
    """A finished process with its wall time and its own peak RSS (``os.wait4``)."""

    wall_s: float = 0.0
    max_rss_mb: float = 0.0


# Runs the command as its own child and reports that child's rusage.  The child is started from
# this small process rather than from pytest because Linux keeps a process's peak RSS across
# exec: a child forked from a large pytest process would report pytest's size as its own.
_LAUNCHER = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    json.dump({"code": os.waitstatus_to_exitcode(status), "max_rss_kb": usage.ru_maxrss}, fh)
"""


def run_measured(
    argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 60
) -> Measured:
    """Run ``argv`` as its own process; a run past ``timeout`` is killed and fails the test."""
    out_path, err_path = cwd / ".measured.out", cwd / ".measured.err"
    usage_path = cwd / ".measured.json"
    usage_path.unlink(missing_ok=True)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(usage_path), *argv],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(
                f"{' '.join(argv[3:])} did not finish within {timeout}s:\n"
                + err_path.read_text(errors="replace")[-2000:]
            ) from None
        wall = time.monotonic() - start
    usage = json.loads(usage_path.read_text())
    return Measured(
        returncode=usage["code"],
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        wall_s=wall,
        max_rss_mb=usage["max_rss_kb"] / 1024,  # kilobytes on Linux
    )


@dataclass
class Project:
    """A directory of manifests matching a seeded live project, with a few drifted on purpose."""

    root: Path
    live: list[dict[str, Any]]
    drifted: frozenset[str]
    port: int = field(default_factory=process.free_port)
    db: Path = field(init=False)
    records: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=process.credentials_env)

    def __post_init__(self) -> None:
        self.db = self.root / "live.sqlite"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextlib.contextmanager
    def emulator(
        self,
        *,
        fail_rate: float = 0.0,
        drop_rate: float = 0.0,
        latency_ms: int = 0,
        jitter_ms: int = 0,
        rate_limits: str = "list=20,show=20,update=10",
    ) -> Iterator[process.Emulator]:
        """The emulator on this project's port and database; seeded on its first start only."""
        first = not self.db.exists()
        record = self.root / f"requests-{len(self.records)}.jsonl"
        self.records.append(record)
        seed = self.root / "seed.json"
        if first:
            workload.write_seed(self.live, seed)
        extra = ["--fail-rate", str(fail_rate), "--drop-rate", str(drop_rate)]
        # A fixed seed makes the injected faults the same on every run (and in CI).
        extra += ["--jitter-ms", str(jitter_ms), "--random-seed", str(len(self.records))]
        with process.emulator(
            self.root,
            seed=seed if first else None,
            db=self.db,
            port=self.port,
            latency_ms=latency_ms,
            rate_limits=rate_limits,
            extra=extra,
            record=record,
            env=self.env,
        ) as emu:
            yield emu

    def cli(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> CliResult:
        """``python -m reconciler`` against this project's emulator, as its own process."""
        argv = process.reconciler_argv(self.endpoint, *args)
        done = subprocess.run(
            argv,
            cwd=self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """``python -m reconciler`` against this project's emulator, started and left running
        (for tests that signal or kill it mid-run); its output is piped."""
        return subprocess.Popen(
            process.reconciler_argv(self.endpoint, *args),
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def fail_fast(self, max_retries: int = 1, rate_limits: str | None = None) -> None:
        """A reconciler.yaml that gives up sooner: for tests of the final error, not of retries
        (``rate_limits``: a YAML flow mapping for the client's pacing)."""
        limits = f", rate_limits: {rate_limits}" if rate_limits else ""
        (self.root / "reconciler.yaml").write_text(
            "default_target: bench\n"
            "targets:\n"
            f"  bench: {{region: {process.REGION}, project_id: {process.PROJECT_ID}, "
            f"endpoint: '{self.endpoint}', max_retries: {max_retries}{limits}}}\n"
        )

    def requests(self) -> list[dict[str, Any]]:
        """Every request any emulator start of this project recorded, in order."""
        entries: list[dict[str, Any]] = []
        for record in self.records:
            if record.exists():
                # Only whole lines: the emulator may be writing one now, or may have been
                # killed in the middle of one.
                text = record.read_text()
                lines = text[: text.rfind("\n") + 1].splitlines()
                entries += [json.loads(x) for x in lines if x.strip()]
        return [e for e in entries if not process.is_probe(e)]

    def puts(self) -> list[tuple[str, Any]]:
        """(asset_id, body) of every PUT the emulator received."""
        return [
            (str(e["path"]).rstrip("/").rsplit("/", 1)[-1], e.get("body"))
            for e in self.requests()
            if process.request_kind(e) == "update"
        ]


def make_project_in(root: Path, n: int = 24, drift_ratio: float = 0.25, seed: int = 7) -> Project:
    from reconciler.emulator import generate_assets

    live = workload.make_updatable(generate_assets(n, seed=seed, project_id=process.PROJECT_ID))
    load = workload.write_manifests(live, root / "manifests", drift_ratio=drift_ratio, seed=seed)
    return Project(root=root, live=live, drifted=load.drifted)
