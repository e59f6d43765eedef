"""What only the SQLite store does: one local file, created on the first write, readable by
plain ``sqlite3``; files of earlier versions keep working; a lock left by a dead process of
this host is taken over; and :func:`open_store`'s choice of backend."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlite_rows import leave_row_of_an_earlier_process_with_this_pid

from reconciler.state import (
    DEFAULT_STATE_PATH,
    Episode,
    LockHeld,
    LockHolder,
    LockLost,
    Observation,
    Record,
    Resolution,
    StateError,
    open_store,
)
from reconciler.state.base import HeldLock
from reconciler.state.sqlite import SqliteStore

E, P = "https://metastudio.example.com", "p1"

# The schema as earlier versions of the tool wrote it, table by table.
OLD_WRITE_ONLY = """
CREATE TABLE IF NOT EXISTS write_only (
    project_id  TEXT NOT NULL,
    asset_id    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    applied_at  TEXT NOT NULL,
    PRIMARY KEY (project_id, asset_id)
)
"""
OLD_LOCKS = """
CREATE TABLE IF NOT EXISTS locks (
    endpoint   TEXT NOT NULL,
    project_id TEXT NOT NULL,
    token      TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    host       TEXT NOT NULL,
    command    TEXT NOT NULL,
    since      TEXT NOT NULL,
    PRIMARY KEY (endpoint, project_id)
)
"""
OLD_HISTORY = """
CREATE TABLE IF NOT EXISTS drift_episodes (
    id              INTEGER PRIMARY KEY,
    project_id      TEXT NOT NULL,
    asset_id        TEXT NOT NULL,
    status          TEXT NOT NULL,
    first_seen      TEXT NOT NULL,
    last_seen       TEXT NOT NULL,
    cycles          INTEGER NOT NULL,
    fields          TEXT NOT NULL,
    manifest_digest TEXT,
    resolved_at     TEXT,
    resolution      TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS drift_episodes_open
    ON drift_episodes (project_id, asset_id) WHERE resolved_at IS NULL;
CREATE INDEX IF NOT EXISTS drift_episodes_asset ON drift_episodes (project_id, asset_id);
"""


def test_default_path_is_under_dot_reconciler() -> None:
    assert Path(".reconciler/state.sqlite") == DEFAULT_STATE_PATH


def test_reading_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.sqlite"
    with SqliteStore(path) as store:
        assert store.records.get("p", "a") is None
        assert store.records.get_many("p", ["a", "b"]) == {}
        assert list(store.records.all_records()) == []
        assert store.locks.holder(E, P) is None
        assert store.locks.entries() == []
        assert store.locks.unlock(E, P) is None
        with pytest.raises(LockLost):
            store.locks.check(HeldLock(E, P, "token"))
        assert store.history.open_episodes(P) == {}
        assert store.history.episodes(P, "a") == []
        assert list(store.history.all_episodes()) == []
        assert store.location == str(path)
    assert not path.parent.exists()


def test_the_first_write_creates_the_file_and_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.sqlite"
    with SqliteStore(path) as store:
        store.records.record("p", "a", "fp")
    assert path.is_file()


def test_unusable_state_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "state.sqlite"
    bad.write_text("this is not a database")
    with SqliteStore(bad) as store:
        with pytest.raises(StateError, match=re.escape(f"state file {bad}")):
            store.records.get("p", "a")
        with pytest.raises(StateError, match=re.escape(f"state file {bad}")):
            store.locks.acquire(E, P)
        with pytest.raises(StateError, match=re.escape(f"state file {bad}")):
            store.history.record_cycle(P, [], "t1")


def test_a_state_folder_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("in the way")
    path = tmp_path / "file" / "state.sqlite"
    with SqliteStore(path) as store, pytest.raises(StateError, match="state file"):
        store.records.record("p", "a", "fp")


def test_store_is_plain_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with SqliteStore(path) as store:
        store.records.record("p", "a", "fp")
        store.history.record_cycle("p", [Observation("a", "drifted", True, ("tags",))], "t1")
        store.locks.acquire(E + "/", P, command="apply")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT project_id, asset_id, fingerprint FROM write_only")
        assert list(rows) == [("p", "a", "fp")]
        rows = conn.execute("SELECT asset_id, fields, cycles, resolved_at FROM drift_episodes")
        assert list(rows) == [("a", '["tags"]', 1, None)]
        rows = conn.execute("SELECT endpoint, project_id, pid, command FROM locks")
        assert list(rows) == [(E, P, os.getpid(), "apply")]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_file_of_an_earlier_version_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_WRITE_ONLY + ";" + OLD_LOCKS + ";" + OLD_HISTORY)
        conn.execute(
            "INSERT INTO write_only VALUES ('p', 'a', 'review_config:abc', '2025-01-01T00:00:00Z')"
        )
        conn.execute(
            "INSERT INTO locks VALUES (?, ?, 'tok', ?, 'elsewhere', 'apply', ?)",
            (E, P, os.getpid(), "2025-01-01T00:00:00Z"),
        )
        conn.execute(
            "INSERT INTO drift_episodes (project_id, asset_id, status, first_seen, last_seen, "
            "cycles, fields, manifest_digest, resolved_at, resolution) VALUES "
            "('p', 'a', 'drifted', 't1', 't2', 2, '[\"tags\"]', 'd1', NULL, NULL), "
            "('p', 'b', 'missing', 't0', 't1', 1, '[]', NULL, 't2', 'self-heal')"
        )
    conn.close()
    with SqliteStore(path) as store:
        assert store.records.get("p", "a") == Record("review_config:abc", "2025-01-01T00:00:00Z")
        held_elsewhere = LockHolder(os.getpid(), "elsewhere", "apply", "2025-01-01T00:00:00Z")
        assert store.locks.holder(E, P) == held_elsewhere
        with pytest.raises(LockHeld):
            store.locks.acquire(E, P)
        assert store.history.episodes("p", "b") == [
            Episode("p", "b", "missing", "t0", "t1", 1, (), None, "t2", Resolution.SELF_HEAL)
        ]
        store.history.record_cycle(
            "p", [Observation("a", "drifted", True, ("asset_name",), "d1")], "t3"
        )
        assert store.history.open_episodes("p")["a"] == Episode(
            "p", "a", "drifted", "t1", "t3", 3, ("asset_name", "tags"), "d1"
        )


def test_a_file_with_only_the_records_gains_the_other_tables(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_WRITE_ONLY)
        conn.execute("INSERT INTO write_only VALUES ('p', 'a', 'fp', '2025-01-01T00:00:00Z')")
    conn.close()
    with SqliteStore(path) as store:
        assert store.history.open_episodes("p") == {}
        assert store.locks.entries() == []
        with store.locks.hold(E, P):
            assert store.locks.holder(E, P) is not None
        assert store.records.get("p", "a") == Record("fp", "2025-01-01T00:00:00Z")


def test_a_lock_whose_holder_died_on_this_host_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    code = (
        "import sys, os\n"
        "from reconciler.state.sqlite import SqliteStore\n"
        "SqliteStore(sys.argv[1]).locks.acquire(sys.argv[2], sys.argv[3])\n"
        "os._exit(0)  # dies holding it\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), E, P], check=True, timeout=60)
    with SqliteStore(path) as store:
        holder = store.locks.holder(E, P)
        assert holder is not None and holder.pid != os.getpid()
        (entry,) = store.locks.entries()
        assert (entry.holder, entry.alive) == (holder, False)
        with store.locks.hold(E, P) as held:
            taken = store.locks.holder(E, P)
            assert taken is not None and taken.pid == os.getpid()
            store.locks.check(held)


def test_a_lock_left_by_an_earlier_process_with_this_pid_is_taken_over(tmp_path: Path) -> None:
    """A restarted container runs as pid 1 again, on the same host name: the row its earlier
    life left holds nothing, while a lock this very process holds is never taken from it."""
    path = tmp_path / "state.sqlite"
    leave_row_of_an_earlier_process_with_this_pid(path, E, P)
    with SqliteStore(path) as store, store.locks.hold(E, P, command="apply") as held:
        store.locks.check(held)
        with SqliteStore(path) as second, pytest.raises(LockHeld):
            second.locks.acquire(E, P)


def test_a_holder_on_another_host_is_never_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with SqliteStore(path) as store:
        store.locks.acquire(E, P)
    with sqlite3.connect(path) as conn:  # as if a runner elsewhere held it, with a pid unused here
        conn.execute("UPDATE locks SET host = 'runner-7', pid = 999999999")
    conn.close()
    with SqliteStore(path) as store:
        with pytest.raises(LockHeld, match="pid 999999999 on runner-7"):
            store.locks.acquire(E, P)
        (entry,) = store.locks.entries()
        assert entry.alive is None  # cannot be told from this host
        assert entry.holder.host == "runner-7" != socket.gethostname()
        assert store.locks.unlock(E, P) == entry.holder
        store.locks.acquire(E, P)


def test_open_store_picks_the_backend_from_the_location(tmp_path: Path) -> None:
    default = open_store(None)
    assert isinstance(default, SqliteStore) and default.path == DEFAULT_STATE_PATH
    for location in (str(tmp_path / "s.sqlite"), tmp_path / "s.sqlite"):
        store = open_store(location)
        assert isinstance(store, SqliteStore) and store.path == tmp_path / "s.sqlite"
    assert not (tmp_path / "s.sqlite").exists()  # opening connects to nothing yet


@pytest.mark.parametrize("url", ["postgresql://db.example.com/state", "postgres://db/state"])
def test_a_postgresql_state_without_the_driver_names_the_install(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "reconciler.state.postgres", raising=False)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    with pytest.raises(StateError) as caught:
        open_store(url)
    message = str(caught.value)
    assert message.startswith("a postgresql:// state needs the PostgreSQL driver: pip install ")
    assert "metastudio-reconciler[postgres]" in message
