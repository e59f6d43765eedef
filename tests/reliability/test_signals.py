"""SIGTERM and the run deadline, as real processes and real signals.

A CI runner cancels a job with SIGTERM (and SIGKILL after a grace period). Whatever the run is
doing, it ends with a clear line and exit 143, and nothing it started (the forked manifest
parsers) outlives it or holds its output open, which would keep the CI step waiting.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import process

from .harness import Project

pytestmark = pytest.mark.reliability

MANIFEST = """\
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: load-{i:05d}
  labels: {{team: reliability, index: "{i}"}}
spec:
  asset_name: Load test {i}
  asset_description: A manifest among three thousand, to keep the parallel loader busy.
  tags: [NEWS, FEMALE]
  asset_extra_meta:
    human_model_2d_meta: {{support_live: true, model_resolution: 1080P}}
"""


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("many")
    folder = root / "manifests"
    folder.mkdir()
    for i in range(3000):
        (folder / f"m{i:05d}.yaml").write_text(MANIFEST.format(i=i))
    return root


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def start(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        cwd=root,
        env=process.credentials_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def wait_for_workers(proc: subprocess.Popen[str], timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        workers = children(proc.pid)
        if workers:
            return workers
        time.sleep(0.002)
    raise AssertionError("the loader never started its worker processes")


def assert_gone(pids: list[int], timeout: float = 3) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(alive(p) for p in pids), "a loader worker outlived the run"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the loader forks only with 2 cores")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_signal_during_a_load_of_3000_manifests(many: Path, sig: signal.Signals) -> None:
    proc = start(many, "validate", "manifests")
    workers = wait_for_workers(proc)
    started = time.monotonic()
    proc.send_signal(sig)
    # communicate() reads stdout and stderr to their end: a worker holding them would hang it.
    out, err = proc.communicate(timeout=10)
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"{elapsed:.1f}s from the signal to the end of the output"
    assert_gone(workers)
    if sig == signal.SIGTERM:
        assert proc.returncode == 143, out + err
        assert "Terminated (SIGTERM)." in err
        assert "Traceback" not in out + err, err
        assert "manifests valid" not in out
    else:
        assert proc.returncode == -signal.SIGKILL


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the loader forks only with 2 cores")
def test_a_finished_plan_prints_everything_and_leaves_no_worker(
    make_project: Callable[..., Project],
) -> None:
    """The run ends without interpreter teardown (cli.main.entry): its whole output still
    arrives, in order, and the forked load workers end with it."""
    project = make_project(n=600, drift_ratio=0.05)
    # Output to a pipe is block-buffered, as in CI: what is not flushed before the exit is lost.
    project.env.pop("PYTHONUNBUFFERED", None)
    with project.emulator():
        proc = project.spawn("plan", "manifests", "--detailed-exitcode")
        workers = wait_for_workers(proc)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert "Traceback" not in out + err, err
    assert out.rstrip().splitlines()[-1] == (
        f"Plan: {len(project.drifted)} to change, {600 - len(project.drifted)} unchanged."
    ), out[-500:]
    assert out.count("will be updated in-place") == len(project.drifted), out[-2000:]
    assert_gone(workers)


def test_sigterm_during_apply_finishes_in_flight_requests_and_prints_the_summary(
    project: Project,
) -> None:
    """SIGTERM while PUTs are being sent: the requests in flight finish, nothing new starts,
    the summary is printed and the exit code is 143."""
    with project.emulator(latency_ms=300, rate_limits="list=20,show=20,update=4"):
        proc = project.spawn("apply", "manifests", "--auto-approve", "--parallelism", "2")
        deadline = time.monotonic() + 30
        while not project.puts() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert project.puts(), "no PUT was sent"
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - signalled
        time.sleep(0.4)  # let the emulator log the last answers
        sent = len(project.puts())
    assert "Traceback" not in out + err, err
    assert proc.returncode == 143, out + err
    assert "SIGTERM received: starting nothing new, waiting for requests in flight" in err
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("Apply interrupted by SIGTERM: "), out
    changed = int(summary.split(": ")[1].split(" changed")[0])
    assert changed == sent, f"{sent} PUTs reached the service, {changed} reported"
    assert 0 < sent < len(project.drifted), f"{sent} of {len(project.drifted)}: not mid-apply"
    assert f"{len(project.drifted) - sent} not started" in summary
    assert elapsed < 5, f"{elapsed:.1f}s from SIGTERM to exit"
