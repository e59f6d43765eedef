"""``reconciler state locks|unlock|migrate`` on the default SQLite state, as real processes:
what a person sees, what is removed or copied, and the exit codes."""

from __future__ import annotations

import os
import pty
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.engine.history import Observation
from reconciler.engine.records import Record
from reconciler.state import LockLost
from reconciler.state.sqlite import SqliteStore

ENDPOINT = "https://metastudio.cn-north-4.myhuaweicloud.com"
OTHER = "https://metastudio.ap-southeast-3.myhuaweicloud.com"
HOST = socket.gethostname()
STATE = Path(".reconciler/state.sqlite")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def reconciler(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def store(workdir: Path) -> Iterator[SqliteStore]:
    with SqliteStore(workdir / STATE) as opened:
        yield opened


def test_no_state_file_lists_no_locks_and_creates_none(workdir: Path) -> None:
    listed = reconciler("state", "locks", cwd=workdir)
    assert (listed.returncode, listed.stdout) == (0, f"No locks in {STATE}.\n")
    assert not (workdir / ".reconciler").exists()


def test_locks_lists_every_holder_and_whether_it_is_alive(
    workdir: Path, store: SqliteStore
) -> None:
    store.locks.acquire(ENDPOINT, "proj-a", command="apply")
    with sqlite3.connect(workdir / STATE) as conn:  # a holder on another host
        conn.execute(
            "INSERT INTO locks VALUES (?, ?, 'x', 4242, 'runner-7', 'watch', "
            "'2030-01-01T00:00:00Z')",
            (OTHER, "proj-b"),
        )
    listed = reconciler("state", "locks", cwd=workdir)
    assert listed.returncode == 0, listed.stderr
    head, first, second = listed.stdout.split("\n\n")
    assert head == f"2 locks in {STATE}:"
    assert first.splitlines()[0:3] == [
        "  project:  proj-a",
        f"  endpoint: {ENDPOINT}",
        f"  held by:  apply (pid {os.getpid()} on {HOST})",
    ]
    assert first.splitlines()[-1] == "  alive:    yes"
    assert second == (
        "  project:  proj-b\n"
        f"  endpoint: {OTHER}\n"
        "  held by:  watch (pid 4242 on runner-7)\n"
        "  since:    2030-01-01T00:00:00Z\n"
        "  alive:    unknown (another host)\n"
    )


def test_a_holder_that_died_on_this_host_is_listed_as_gone(workdir: Path) -> None:
    dead = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; from reconciler.state.sqlite import SqliteStore; "
            "SqliteStore(sys.argv[1]).locks.acquire(sys.argv[2], 'proj-a'); os._exit(0)",
            str(workdir / STATE),
            ENDPOINT,
        ],
        check=True,
    )
    assert dead.returncode == 0
    listed = reconciler("state", "locks", cwd=workdir)
    assert "  alive:    no (the holder is gone)\n" in listed.stdout, listed.stdout


def held(store: SqliteStore) -> list[tuple[str, str]]:
    return [(e.endpoint, e.project_id) for e in store.locks.entries()]


def test_unlock_without_a_terminal_or_force_refuses_and_removes_nothing(
    workdir: Path, store: SqliteStore
) -> None:
    store.locks.acquire(ENDPOINT, "proj-a")
    refused = reconciler("state", "unlock", "proj-a", cwd=workdir)
    assert refused.returncode == 1
    assert "stdin is not a terminal; nothing was removed. Re-run with --force." in refused.stderr
    assert "Traceback" not in refused.stderr
    assert held(store) == [(ENDPOINT, "proj-a")]


def test_unlock_force_removes_a_live_holders_lock_and_the_holder_notices(
    workdir: Path, store: SqliteStore
) -> None:
    lock = store.locks.acquire(ENDPOINT, "proj-a")
    removed = reconciler("state", "unlock", "proj-a", "--force", cwd=workdir)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.startswith(
        f"Removed the lock of project proj-a at {ENDPOINT} (was held by apply (pid "
        f"{os.getpid()} on {HOST}, since "
    )
    assert held(store) == []
    with pytest.raises(LockLost):
        store.locks.check(lock)


@pytest.mark.parametrize("key", ["proj-a", ENDPOINT, ENDPOINT + "/", "prod"])
def test_unlock_finds_the_lock_by_project_endpoint_or_target(
    workdir: Path, store: SqliteStore, key: str
) -> None:
    (workdir / "reconciler.yaml").write_text(
        f"targets:\n  prod:\n    endpoint: {ENDPOINT}/\n    project_id: proj-a\n",
        encoding="utf-8",
    )
    store.locks.acquire(ENDPOINT, "proj-a")
    store.locks.acquire(OTHER, "proj-b")
    removed = reconciler("state", "unlock", key, "--force", cwd=workdir)
    assert removed.returncode == 0, removed.stderr
    assert held(store) == [(OTHER, "proj-b")]


def test_unlock_of_an_unknown_or_ambiguous_key_says_which_locks_exist(
    workdir: Path, store: SqliteStore
) -> None:
    nothing = reconciler("state", "unlock", "proj-a", "--force", cwd=workdir)
    assert nothing.returncode == 1
    assert f"Error: no lock in {STATE} matches 'proj-a' (locks: none)" in nothing.stderr
    store.locks.acquire(ENDPOINT, "proj-a")
    store.locks.acquire(ENDPOINT, "proj-b")
    unknown = reconciler("state", "unlock", "proj-z", "--force", cwd=workdir)
    assert unknown.returncode == 1
    assert f"(locks: proj-a at {ENDPOINT}, proj-b at {ENDPOINT})" in unknown.stderr
    ambiguous = reconciler("state", "unlock", ENDPOINT, "--force", cwd=workdir)
    assert ambiguous.returncode == 1
    assert "matches 2 locks" in ambiguous.stderr and "name the project" in ambiguous.stderr
    assert len(held(store)) == 2


def on_terminal(workdir: Path, answer: str, *args: str) -> tuple[int, str, str]:
    """Run with stdin on a pseudo-terminal, typing ``answer``."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", *args],
            cwd=workdir,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(slave)
        os.write(master, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    return proc.returncode, out, err


def test_unlock_on_a_terminal_asks_and_only_yes_removes(workdir: Path, store: SqliteStore) -> None:
    store.locks.acquire(ENDPOINT, "proj-a")
    code, out, err = on_terminal(workdir, "y", "state", "unlock", "proj-a")
    assert code == 1 and "Nothing was removed." in err
    assert f"Remove the lock of project proj-a at {ENDPOINT}, held by apply (pid" in err
    assert "Only 'yes' will be accepted" in err
    assert held(store) == [(ENDPOINT, "proj-a")]
    code, out, err = on_terminal(workdir, "yes", "state", "unlock", "proj-a")
    assert code == 0, err
    assert out.startswith("Removed the lock of project proj-a")
    assert held(store) == []


def test_migrate_copies_records_and_episodes_once_and_never_locks(
    workdir: Path, store: SqliteStore
) -> None:
    store.records.record("proj-a", "asset-1", "review_config:abc", "2030-01-01T00:00:00Z")
    store.records.record("proj-a", "asset-2", "shared_config:def", "2030-01-01T00:00:00Z")
    store.history.record_cycle(
        "proj-a",
        [Observation("asset-1", "drifted", True, ("asset_name",), "digest")],
        "2030-01-02T00:00:00Z",
    )
    store.locks.acquire(ENDPOINT, "proj-a")
    target = workdir / "elsewhere" / "copy.sqlite"
    first = reconciler("state", "migrate", "--to", str(target), cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert first.stdout == (
        f"Copied the state from {STATE} to {target}:\n"
        "  write-only records: 2 copied, 0 already there\n"
        "  drift episodes:     1 copied, 0 already there\n"
        "Locks are not copied: they belong to the processes that hold them.\n"
    )
    again = reconciler("state", "migrate", "--to", str(target), cwd=workdir)
    assert "  write-only records: 0 copied, 2 already there\n" in again.stdout
    assert "  drift episodes:     0 copied, 1 already there\n" in again.stdout
    with SqliteStore(target) as copy:
        assert copy.records.get("proj-a", "asset-2") == store.records.get("proj-a", "asset-2")
        assert copy.history.episodes("proj-a", "asset-1") == store.history.episodes(
            "proj-a", "asset-1"
        )
        assert copy.locks.entries() == []


def test_migrate_to_the_state_itself_copies_nothing(workdir: Path, store: SqliteStore) -> None:
    store.records.record("proj-a", "asset-1", "review_config:abc")
    same = reconciler("state", "migrate", "--to", str(STATE), cwd=workdir)
    assert same.returncode == 1
    assert f"Error: the state is already at {STATE}; nothing to copy" in same.stderr


def test_migrate_to_an_unreachable_database_hides_the_password(
    workdir: Path, store: SqliteStore
) -> None:
    store.records.record("proj-a", "asset-1", "review_config:abc")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://ci:Dest-Secret-5@127.0.0.1:{port}/reconciler"
    failed = reconciler("state", "migrate", "--to", url, cwd=workdir)
    assert failed.returncode == 1
    assert f"cannot connect to the state at postgresql://ci@127.0.0.1:{port}/reconciler" in (
        failed.stderr
    )
    assert "Dest-Secret-5" not in failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr


def test_migrate_again_never_overwrites_a_newer_record_of_the_destination(
    workdir: Path, store: SqliteStore
) -> None:
    """After the switch, an apply recorded a newer fingerprint in the new state; migrating the
    old file again must keep it, or a plan would take the old value for the live one."""
    store.records.record("proj-a", "asset-1", "review_config:old", "2030-01-01T00:00:00Z")
    store.records.record("proj-a", "asset-2", "review_config:two", "2030-01-01T00:00:00Z")
    target = workdir / "copy.sqlite"
    with SqliteStore(target) as copy:
        copy.records.record("proj-a", "asset-1", "review_config:new", "2030-02-01T00:00:00Z")
    again = reconciler("state", "migrate", "--to", str(target), cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "  write-only records: 1 copied, 1 already there\n" in again.stdout
    with SqliteStore(target) as copy:
        assert copy.records.get("proj-a", "asset-1") == Record(
            "review_config:new", "2030-02-01T00:00:00Z"
        )
