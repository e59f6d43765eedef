"""The watch leadership on the SQLite state: claim, stand by, lose, hold off, take over.

Another live process is played by a store whose lock holder is this process's parent (alive, on
this host); a dead one by a pid that no longer runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_rows import leave_row_of_an_earlier_process_with_this_pid

from reconciler.run import LEADER_SUFFIX, Leadership, leader_key
from reconciler.state.sqlite import SqliteStore

PLACE = ("https://metastudio.example.com", "p-1")
KEY = (f"https://metastudio.example.com{LEADER_SUFFIX}", "p-1")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite"


@pytest.fixture
def other(state: Path) -> Iterator[SqliteStore]:
    """The store of another live replica of this host."""
    store = SqliteStore(state)
    store.locks.pid = os.getppid()
    with store:
        yield store


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_the_key_is_the_project_with_the_endpoint_suffixed() -> None:
    assert leader_key(("https://metastudio.example.com/", "p-1")) == KEY


def test_the_first_claim_leads_and_a_second_replica_stands_by_naming_it(
    state: Path, other: SqliteStore
) -> None:
    mine = Leadership(SqliteStore(state), "watch --self-heal")
    first = mine.claim(PLACE)
    assert (first.leader, first.changed) == (True, True)
    assert mine.settle([PLACE])[0].leader  # confirmed, no change
    entry = next(e for e in other.locks.entries() if (e.endpoint, e.project_id) == KEY)
    assert (entry.holder.pid, entry.holder.command) == (os.getpid(), "watch --self-heal")
    assert other.locks.holder(*PLACE) is None  # the project's write lock stays free

    theirs = Leadership(other, "watch --self-heal")
    standby = theirs.claim(PLACE)
    assert not standby.leader and standby.holder is not None
    assert standby.holder.pid == os.getpid()

    mine.close()  # a graceful stop gives it back
    assert other.locks.holder(*KEY) is None
    assert theirs.claim(PLACE).leader


def test_a_lost_lease_steps_down_and_holds_off_before_claiming_again(
    state: Path, other: SqliteStore
) -> None:
    clock = Clock()
    mine = Leadership(SqliteStore(state), "watch", hold_off=1.0, clock=clock)
    assert mine.claim(PLACE).leader
    other.locks.unlock(*KEY)  # `reconciler state unlock`
    lost = mine.confirm(PLACE)
    assert (lost.leader, lost.changed) == (False, True)
    assert lost.lost is not None and "no longer held" in lost.lost
    assert not mine.claim(PLACE).leader  # holding off: the other replica goes first
    assert other.locks.holder(*KEY) is None
    clock.now += 1.0
    assert mine.claim(PLACE).leader
    mine.close()


def test_a_dead_leaders_lease_is_taken_over(state: Path) -> None:
    with SqliteStore(state) as dead:
        dead.locks.pid = dead_pid()
        dead.locks.acquire(*KEY, command="watch --self-heal")
    mine = Leadership(SqliteStore(state), "watch --self-heal")
    assert mine.claim(PLACE).leader
    mine.close()


def test_a_row_left_by_an_earlier_process_with_this_pid_is_taken_over(state: Path) -> None:
    """A restarted container runs as pid 1 again, on the same host name."""
    leave_row_of_an_earlier_process_with_this_pid(state, *KEY)
    mine = Leadership(SqliteStore(state), "watch --self-heal")
    assert mine.claim(PLACE).leader
    # ... but a leadership of this very process is never taken from it.
    second = Leadership(SqliteStore(state), "watch --self-heal")
    assert not second.claim(PLACE).leader
    assert mine.confirm(PLACE).leader
    second.close()
    mine.close()


def test_a_state_that_cannot_be_asked_is_an_error_not_a_role_change(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    mine = Leadership(SqliteStore(blocker / "state.sqlite"), "watch")
    standing = mine.claim(PLACE)
    assert not standing.leader and standing.error
    mine.close()
