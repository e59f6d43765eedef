"""The write lock per (endpoint, project): one holder, named; waiting; dead holders taken over."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reconciler.engine.lock import LockHeld, LockHolder, ProjectLock

E, P = "https://metastudio.example.com", "p1"


def test_a_second_holder_is_refused_at_once_naming_the_first(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with ProjectLock(path).hold(E, P, command="apply"):
        with pytest.raises(LockHeld) as caught:
            ProjectLock(path).acquire(E + "/", P)  # a trailing slash is the same endpoint
        holder = caught.value.holder
        assert (holder.pid, holder.command) == (os.getpid(), "apply")
        assert holder.host and holder.since.endswith("Z")
        assert f"pid {os.getpid()}" in str(caught.value)
        assert "--lock-timeout" in str(caught.value)
        assert ProjectLock(path).holder(E, P) == holder
    assert ProjectLock(path).holder(E, P) is None


def test_locks_are_per_endpoint_and_project(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    lock = ProjectLock(path)
    with lock.hold(E, P), lock.hold(E, "p2"), lock.hold("https://other.example.com", P):
        pass


def test_waiting_takes_the_lock_once_it_is_released(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    first = ProjectLock(path)
    held = first.acquire(E, P)
    waits: list[LockHolder] = []
    threading.Timer(0.3, first.release, args=(held,)).start()
    started = time.monotonic()
    with ProjectLock(path).hold(E, P, timeout=10, on_wait=waits.append):
        assert time.monotonic() - started >= 0.2
    assert len(waits) == 1 and waits[0].pid == os.getpid()


def test_waiting_gives_up_after_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with ProjectLock(path).hold(E, P), pytest.raises(LockHeld, match=r"waited 0\.\d+s"):
        ProjectLock(path).acquire(E, P, timeout=0.3)


def test_a_lock_whose_holder_died_on_this_host_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    code = (
        "import sys, os\n"
        "from reconciler.engine.lock import ProjectLock\n"
        "ProjectLock(sys.argv[1]).acquire(sys.argv[2], sys.argv[3])\n"
        "os._exit(0)  # dies holding it\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), E, P], check=True, timeout=60)
    holder = ProjectLock(path).holder(E, P)
    assert holder is not None and holder.pid != os.getpid()
    with ProjectLock(path).hold(E, P):
        assert ProjectLock(path).holder(E, P).pid == os.getpid()  # type: ignore[union-attr]


def test_release_only_removes_its_own_lock(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    lock = ProjectLock(path)
    stale = lock.acquire(E, P)
    lock.release(stale)
    current = lock.acquire(E, P)
    lock.release(stale)  # an old handle does not free the new holder
    assert lock.holder(E, P) is not None
    lock.release(current)
    assert lock.holder(E, P) is None
