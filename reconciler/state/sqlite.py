"""The default state store: one SQLite file, ``.reconciler/state.sqlite``.

Three tables, one per kind of memory: ``write_only`` (the write-only fingerprints), ``locks``
(one row per locked (endpoint, project)) and ``drift_episodes``.  The file is created on the
first write; reading a file that does not exist finds nothing and creates nothing, so ``plan``
never writes.  Files written by earlier versions of the tool have the same tables and keep
working.

The lock row is taken in an IMMEDIATE transaction, so two processes never both see it free.  A
row left by a process of this host that no longer runs (it crashed or was killed) is taken over;
a holder on another host cannot be checked, so it is reported, and ``reconciler state unlock``
removes it.

One connection per store, in WAL mode, shared by the threads of one process under a mutex.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Self

from reconciler.engine.history import (
    CycleChanges,
    Episode,
    Observation,
    Resolution,
    decide_cycle,
)
from reconciler.engine.records import Record
from reconciler.state.base import (
    HeldLock,
    LockEntry,
    LockHolder,
    LockLost,
    Locks,
    StateError,
)
from reconciler.times import now_rfc3339

DEFAULT_STATE_PATH = Path(".reconciler/state.sqlite")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS write_only (
    project_id  TEXT NOT NULL,
    asset_id    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    applied_at  TEXT NOT NULL,
    PRIMARY KEY (project_id, asset_id)
);
CREATE TABLE IF NOT EXISTS locks (
    endpoint   TEXT NOT NULL,
    project_id TEXT NOT NULL,
    token      TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    host       TEXT NOT NULL,
    command    TEXT NOT NULL,
    since      TEXT NOT NULL,
    PRIMARY KEY (endpoint, project_id)
);
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
_EPISODE_COLUMNS = (
    "project_id, asset_id, status, first_seen, last_seen, cycles, fields, manifest_digest, "
    "resolved_at, resolution"
)
_HOLDER_COLUMNS = "pid, host, command, since"
_BATCH = 500  # SQLite's default limit on host parameters is 999


# The lock tokens this process holds: a row naming this very pid and host whose token is not
# among them was left by an earlier process that had the same pid (a restarted container is
# pid 1 again), and holds nothing.
_TOKENS_HERE: set[str] = set()


def _alive(pid: int) -> bool:
    """Whether a process of this host with ``pid`` still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user
        return True
    return True


def _holder(row: Sequence[object]) -> LockHolder:
    return LockHolder(int(str(row[0])), str(row[1]), str(row[2]), str(row[3]))


def _episode(row: Sequence[object]) -> Episode:
    return Episode(
        project_id=str(row[0]),
        asset_id=str(row[1]),
        status=str(row[2]),
        first_seen=str(row[3]),
        last_seen=str(row[4]),
        cycles=int(str(row[5])),
        fields=tuple(json.loads(str(row[6]))),
        manifest_digest=None if row[7] is None else str(row[7]),
        resolved_at=None if row[8] is None else str(row[8]),
        resolution=None if row[9] is None else Resolution(str(row[9])),
    )


def _episode_row(episode: Episode) -> tuple[object, ...]:
    return (
        episode.project_id,
        episode.asset_id,
        episode.status,
        episode.first_seen,
        episode.last_seen,
        episode.cycles,
        json.dumps(list(episode.fields)),
        episode.manifest_digest,
        episode.resolved_at,
        episode.resolution.value if episode.resolution else None,
    )


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    """Distinct ids in batches small enough for one statement's parameters."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _BATCH):
        yield unique[start : start + _BATCH]


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """An IMMEDIATE transaction: it takes the file's write lock at once, so what it reads stays
    true until it commits (another process waits, up to the busy timeout)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class SqliteStore:
    """The state in one SQLite file; safe to share between the threads and tasks of a process."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_STATE_PATH) -> None:
        self.path = Path(path)
        self._mutex = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._records = SqliteRecords(self)
        self._locks = SqliteLocks(self)
        self._history = SqliteHistory(self)

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def records(self) -> SqliteRecords:
        return self._records

    @property
    def locks(self) -> SqliteLocks:
        return self._locks

    @property
    def history(self) -> SqliteHistory:
        return self._history

    @contextlib.contextmanager
    def using(self, doing: str, *, create: bool) -> Iterator[sqlite3.Connection | None]:
        """The connection, held alone, for ``doing`` (e.g. ``"read the locks"``); None when the
        file does not exist and ``create`` is false (nothing to read, and nothing is created).
        Every failure of SQLite or of the file system becomes one :class:`StateError` naming
        the file."""
        with self._mutex:
            try:
                yield self._connect(create=create)
            except (OSError, sqlite3.Error) as exc:
                raise StateError(f"cannot {doing} in the state file {self.path}: {exc}") from exc

    def reading(self, what: str) -> contextlib.AbstractContextManager[sqlite3.Connection | None]:
        """The connection for a read of ``what``; None when the file does not exist yet."""
        return self.using(f"read {what}", create=False)

    @contextlib.contextmanager
    def writing(self, what: str) -> Iterator[sqlite3.Connection]:
        """The connection for a write of ``what``, the file created if it does not exist."""
        with self.using(f"write {what}", create=True) as conn:
            assert conn is not None
            yield conn

    def _connect(self, *, create: bool) -> sqlite3.Connection | None:
        """The store's connection, opened once (each open costs a schema check and a sync); None
        when the file does not exist and ``create`` is false."""
        if self._conn is None:
            if not create and not self.path.exists():
                return None
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: each statement commits alone; several go in an explicit transaction.
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteRecords:
    """The write-only fingerprints: the ``write_only`` table."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def get(self, project_id: str, asset_id: str) -> Record | None:
        """The record of the last applied write-only values, if any."""
        return self.get_many(project_id, [asset_id]).get(asset_id)

    def get_many(self, project_id: str, asset_ids: Iterable[str]) -> dict[str, Record]:
        """Records for many assets at once (absent ids have none)."""
        found: dict[str, Record] = {}
        with self._store.reading("the write-only records") as conn:
            if conn is None:
                return found
            for chunk in _chunks(asset_ids):
                rows = conn.execute(
                    "SELECT asset_id, fingerprint, applied_at FROM write_only "
                    f"WHERE project_id = ? AND asset_id IN ({','.join('?' * len(chunk))})",
                    (project_id, *chunk),
                )
                for asset_id, fingerprint, applied_at in rows:
                    found[asset_id] = Record(fingerprint, applied_at)
        return found

    def record(
        self, project_id: str, asset_id: str, fingerprint: str, applied_at: str | None = None
    ) -> Record:
        """Remember ``fingerprint`` as applied now (or at ``applied_at``)."""
        when = applied_at or now_rfc3339()
        with self._store.writing("a write-only record") as conn:
            conn.execute(
                "INSERT INTO write_only (project_id, asset_id, fingerprint, applied_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (project_id, asset_id) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, applied_at = excluded.applied_at",
                (project_id, asset_id, fingerprint, when),
            )
        return Record(fingerprint, when)

    def all_records(self) -> Iterator[tuple[str, str, Record]]:
        """Every record as (project_id, asset_id, record), by project and asset."""
        with self._store.reading("the write-only records") as conn:
            rows = (
                []
                if conn is None
                else conn.execute(
                    "SELECT project_id, asset_id, fingerprint, applied_at FROM write_only "
                    "ORDER BY project_id, asset_id"
                ).fetchall()
            )
        for project_id, asset_id, fingerprint, applied_at in rows:
            yield project_id, asset_id, Record(fingerprint, applied_at)


class SqliteLocks(Locks):
    """The write locks: the ``locks`` table, one row per locked (endpoint, project).  (It
    subclasses the protocol to inherit :meth:`Locks.hold`.)"""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def try_acquire(self, endpoint: str, project_id: str, command: str) -> HeldLock | LockHolder:
        """Take the lock if it is free (or its holder died on this host): the held lock; else
        the holder."""
        token = uuid.uuid4().hex
        with self._store.writing("the lock") as conn, _transaction(conn):
            row = conn.execute(
                f"SELECT {_HOLDER_COLUMNS}, token FROM locks WHERE endpoint = ? AND project_id = ?",
                (endpoint, project_id),
            ).fetchone()
            if row is not None:
                holder = _holder(row)
                if holder.host != self.host:
                    return holder
                earlier = holder.pid == self.pid and str(row[4]) not in _TOKENS_HERE
                if _alive(holder.pid) and not earlier:
                    return holder
            conn.execute(
                "INSERT OR REPLACE INTO locks "
                "(endpoint, project_id, token, pid, host, command, since) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (endpoint, project_id, token, self.pid, self.host, command, now_rfc3339()),
            )
        _TOKENS_HERE.add(token)
        return HeldLock(endpoint, project_id, token)

    def release(self, held: HeldLock) -> None:
        """Give the lock back (only if this holder still has it)."""
        _TOKENS_HERE.discard(held.token)
        with self._store.writing("the lock") as conn:
            conn.execute(
                "DELETE FROM locks WHERE endpoint = ? AND project_id = ? AND token = ?",
                (held.endpoint, held.project_id, held.token),
            )

    def check(self, held: HeldLock) -> None:
        """Raise :class:`LockLost` unless the row of ``held`` still carries its token."""
        try:
            with self._store.reading("the lock") as conn:
                row = (
                    None
                    if conn is None
                    else conn.execute(
                        "SELECT token FROM locks WHERE endpoint = ? AND project_id = ?",
                        (held.endpoint, held.project_id),
                    ).fetchone()
                )
        except StateError as exc:
            raise LockLost(f"{exc}; the lock cannot be confirmed, nothing more is sent") from exc
        if row is None or row[0] != held.token:
            raise LockLost(
                f"the lock of project {held.project_id} at {held.endpoint} is no longer held by "
                f"this run (it was removed from {self._store.path}); nothing more is sent"
            )

    def holder(self, endpoint: str, project_id: str) -> LockHolder | None:
        """Who holds the lock now, if anyone."""
        with self._store.reading("the lock") as conn:
            row = (
                None
                if conn is None
                else conn.execute(
                    f"SELECT {_HOLDER_COLUMNS} FROM locks WHERE endpoint = ? AND project_id = ?",
                    (endpoint.rstrip("/"), project_id),
                ).fetchone()
            )
        return None if row is None else _holder(row)

    def entries(self) -> list[LockEntry]:
        """Every lock, oldest first; whether its holder runs is known for this host's only."""
        with self._store.reading("the locks") as conn:
            rows = (
                []
                if conn is None
                else conn.execute(
                    f"SELECT endpoint, project_id, {_HOLDER_COLUMNS} FROM locks "
                    "ORDER BY since, endpoint, project_id"
                ).fetchall()
            )
        entries: list[LockEntry] = []
        for endpoint, project_id, *holder_row in rows:
            holder = _holder(holder_row)
            alive = _alive(holder.pid) if holder.host == self.host else None
            entries.append(LockEntry(endpoint, project_id, holder, alive))
        return entries

    def unlock(self, endpoint: str, project_id: str) -> LockHolder | None:
        """Remove the lock whoever holds it; the holder it had, if any."""
        place = (endpoint.rstrip("/"), project_id)
        with self._store.using("remove the lock", create=False) as conn:
            if conn is None:
                return None
            with _transaction(conn):
                row = conn.execute(
                    f"SELECT {_HOLDER_COLUMNS} FROM locks WHERE endpoint = ? AND project_id = ?",
                    place,
                ).fetchone()
                conn.execute("DELETE FROM locks WHERE endpoint = ? AND project_id = ?", place)
        return None if row is None else _holder(row)


class SqliteHistory:
    """The drift episodes: the ``drift_episodes`` table, at most one open per asset."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def open_episodes(
        self, project_id: str, asset_ids: Iterable[str] | None = None
    ) -> dict[str, Episode]:
        """The open episode of each asset that has one (of ``asset_ids``, or all)."""
        with self._store.reading("the drift history") as conn:
            return {} if conn is None else _open_episodes(conn, project_id, asset_ids)

    def episodes(self, project_id: str, asset_id: str) -> list[Episode]:
        """Every episode of one asset, oldest first."""
        with self._store.reading("the drift history") as conn:
            rows = (
                []
                if conn is None
                else conn.execute(
                    f"SELECT {_EPISODE_COLUMNS} FROM drift_episodes "
                    "WHERE project_id = ? AND asset_id = ? ORDER BY id",
                    (project_id, asset_id),
                ).fetchall()
            )
        return [_episode(row) for row in rows]

    def record_cycle(
        self, project_id: str, observations: Sequence[Observation], now: str
    ) -> CycleChanges:
        """Record what one cycle saw of every managed asset of ``project_id``, in one
        transaction (see :func:`reconciler.engine.history.decide_cycle`)."""
        with self._store.writing("the drift history") as conn, _transaction(conn):
            current = _open_episodes(conn, project_id, None)
            changes = decide_cycle(project_id, current, observations, now)
            conn.executemany(
                f"INSERT INTO drift_episodes ({_EPISODE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                map(_episode_row, changes.opened),
            )
            conn.executemany(
                "UPDATE drift_episodes SET status = ?, last_seen = ?, cycles = ?, fields = ?, "
                "manifest_digest = ? "
                "WHERE project_id = ? AND asset_id = ? AND resolved_at IS NULL",
                (
                    (
                        e.status,
                        e.last_seen,
                        e.cycles,
                        json.dumps(list(e.fields)),
                        e.manifest_digest,
                        e.project_id,
                        e.asset_id,
                    )
                    for e in changes.continued
                ),
            )
            _close(conn, changes.resolved)
        return changes

    def resolve(self, project_id: str, asset_id: str, how: Resolution, now: str) -> Episode | None:
        """Close the asset's open episode (if any) as resolved ``how``; returns it closed."""
        with self._store.writing("the drift history") as conn, _transaction(conn):
            current = _open_episodes(conn, project_id, [asset_id]).get(asset_id)
            if current is None:
                return None
            closed = current.closed(how, now)
            _close(conn, [closed])
        return closed

    def all_episodes(self) -> Iterator[Episode]:
        """Every episode, oldest first."""
        with self._store.reading("the drift history") as conn:
            rows = (
                []
                if conn is None
                else conn.execute(
                    f"SELECT {_EPISODE_COLUMNS} FROM drift_episodes ORDER BY id"
                ).fetchall()
            )
        yield from map(_episode, rows)

    def import_episode(self, episode: Episode) -> bool:
        """Store a copied episode unless an equal one is there, or it is open and the asset
        already has an open episode (the one here is newer); True when it was added."""
        row = _episode_row(episode)
        with self._store.writing("the drift history") as conn, _transaction(conn):
            same = " AND ".join(f"{column} IS ?" for column in _EPISODE_COLUMNS.split(", "))
            if conn.execute(f"SELECT 1 FROM drift_episodes WHERE {same}", row).fetchone():
                return False
            if episode.open and _open_episodes(conn, episode.project_id, [episode.asset_id]):
                return False
            conn.execute(
                f"INSERT INTO drift_episodes ({_EPISODE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return True


def _open_episodes(
    conn: sqlite3.Connection, project_id: str, asset_ids: Iterable[str] | None
) -> dict[str, Episode]:
    query = (
        f"SELECT {_EPISODE_COLUMNS} FROM drift_episodes "
        "WHERE project_id = ? AND resolved_at IS NULL"
    )
    if asset_ids is None:
        return {e.asset_id: e for e in map(_episode, conn.execute(query, (project_id,)))}
    found: dict[str, Episode] = {}
    for chunk in _chunks(asset_ids):
        rows = conn.execute(
            f"{query} AND asset_id IN ({','.join('?' * len(chunk))})", (project_id, *chunk)
        )
        found.update((e.asset_id, e) for e in map(_episode, rows))
    return found


def _close(conn: sqlite3.Connection, closed: Iterable[Episode]) -> None:
    """Mark the open episode of each asset of ``closed`` resolved as it says."""
    conn.executemany(
        "UPDATE drift_episodes SET resolved_at = ?, resolution = ? "
        "WHERE project_id = ? AND asset_id = ? AND resolved_at IS NULL",
        (
            (
                e.resolved_at,
                e.resolution.value if e.resolution else None,
                e.project_id,
                e.asset_id,
            )
            for e in closed
        ),
    )
