"""Write locks in PostgreSQL: a session-level advisory lock per (endpoint, project) on the
store's lock connection, and a row naming the holder (see the package's docstring)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

from reconciler.state.base import (
    HeldLock,
    LockEntry,
    LockHolder,
    LockLost,
    Locks,
    StateError,
)
from reconciler.state.postgres.connection import (
    Channel,
    Database,
    lock_key,
    one_line,
)
from reconciler.times import now_rfc3339

# SQLSTATE of a session ended by pg_terminate_backend (what `state unlock` does).
ADMIN_SHUTDOWN = "57P01"

if TYPE_CHECKING:
    import psycopg


# The sessions holding the advisory lock of a key (a bigint key shows in pg_locks as its high and
# low 32 bits, objsubid 1); ``{key}`` is an SQL expression.
_HELD = """FROM pg_locks AS held
    WHERE held.locktype = 'advisory' AND held.granted AND held.objsubid = 1
      AND held.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND held.classid::bigint = ({key} >> 32) & 4294967295
      AND held.objid::bigint = {key} & 4294967295"""
_LOCK_ROW = (
    "pid, host, command, since, run_id, "
    f"EXISTS (SELECT 1 {_HELD.format(key='locks.lock_key')}) AS alive"
)
_HOLDER_PID = f"SELECT held.pid {_HELD.format(key='%(key)s::bigint')}"
_CHECK = (
    f"SELECT EXISTS (SELECT 1 {_HELD.format(key='%(key)s::bigint')}"
    " AND held.pid = pg_backend_pid()), "
    "EXISTS (SELECT 1 FROM locks WHERE endpoint = %(endpoint)s AND project_id = %(project)s"
    " AND token = %(token)s)"
)


class PostgresLocks(Locks):
    """The write locks: advisory locks on a connection of their own, and their holders' rows."""

    def __init__(self, db: Database, session: Channel, run_id: str) -> None:
        self._db = db
        self._data = session  # for reading and removing any holder's locks
        self._session = Channel(db, keepalive=True)  # its session holds this store's locks
        # The locks held, (endpoint, project) -> token, and the connection they are held on:
        # when that connection is gone, so are they.
        self._held: dict[tuple[str, str], str] = {}
        self._held_on: psycopg.Connection[Any] | None = None
        self.run_id = run_id
        self.host = socket.gethostname()
        self.pid = os.getpid()

    # --- taking and giving back ----------------------------------------------------------------

    def _held_here(self) -> dict[tuple[str, str], str]:
        """The locks still held: none once the connection they were taken on is gone."""
        if self._held_on is None or self._held_on is not self._session.conn:
            self._held.clear()
        elif not self._session.usable():
            self._held.clear()
            self._session.discard()
        return self._held

    def try_acquire(self, endpoint: str, project_id: str, command: str) -> HeldLock | LockHolder:
        """Take the lock if no session holds it: the held lock; else its holder."""
        pg = self._db.driver
        key = lock_key(endpoint, project_id)
        with self._session.mutex:
            held = self._held_here()
            with self._session.use("take the lock in") as conn:
                self._db.ensure_schema(conn, create=True)
                if (endpoint, project_id) not in held:
                    token = uuid.uuid4().hex
                    if self._take(conn, endpoint, project_id, key, token, command):
                        self._held_on = conn
                        held[(endpoint, project_id)] = token
                        return HeldLock(endpoint, project_id, token)
                # Taken: name the holder.  An acquirer writes its row in the transaction that
                # takes the lock, holding the old row; a moment may pass before a new row shows.
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline:
                    try:
                        row = conn.execute(
                            "SELECT pid, host, command, since, run_id FROM locks "
                            "WHERE endpoint = %s AND project_id = %s FOR SHARE",
                            (endpoint, project_id),
                        ).fetchone()
                    except pg.errors.LockNotAvailable:
                        row = None
                    if row is not None:
                        return LockHolder(int(row[0]), row[1], row[2], row[3], row[4])
                    time.sleep(0.02)
        return LockHolder(0, "an unknown host", "another session", now_rfc3339())

    def _take(
        self,
        conn: psycopg.Connection[Any],
        endpoint: str,
        project_id: str,
        key: int,
        token: str,
        command: str,
    ) -> bool:
        """One attempt, in one transaction: the advisory lock and the holder's row."""
        pg = self._db.driver
        got = False
        try:
            with conn.transaction():
                # Hold the old row first, so a reader who finds the lock taken waits for the
                # new holder's row rather than reading a dead holder's.
                conn.execute(
                    "SELECT 1 FROM locks WHERE endpoint = %s AND project_id = %s FOR UPDATE",
                    (endpoint, project_id),
                )
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                got = bool(row and row[0])
                if not got:
                    raise pg.Rollback()
                conn.execute(
                    "INSERT INTO locks (endpoint, project_id, lock_key, token, pid, host, "
                    "command, run_id, since) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (endpoint, project_id) DO UPDATE SET "
                    "lock_key = excluded.lock_key, token = excluded.token, pid = excluded.pid, "
                    "host = excluded.host, command = excluded.command, "
                    "run_id = excluded.run_id, since = excluded.since",
                    (endpoint, project_id, key, token, self.pid, self.host, command, *self._run),
                )
        except pg.errors.LockNotAvailable:
            got = False  # another acquirer is mid-way: taken, for now
        except BaseException:
            # A session lock outlives a rolled-back transaction: give it back.
            if got and not conn.broken:
                with contextlib.suppress(pg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            raise
        return got

    @property
    def _run(self) -> tuple[str, str]:
        """The run id and the time, for a new holder row."""
        return self.run_id, now_rfc3339()

    def release(self, held: HeldLock) -> None:
        """Give the lock back; when its connection is gone, the server already has."""
        pg = self._db.driver
        place = (held.endpoint, held.project_id)
        with self._session.mutex:
            locks = self._held_here()
            if locks.get(place) != held.token or self._held_on is None:
                return
            del locks[place]
            conn = self._held_on
            try:
                conn.execute(
                    "DELETE FROM locks WHERE endpoint = %s AND project_id = %s AND token = %s",
                    (held.endpoint, held.project_id, held.token),
                )
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(*place),))
            except pg.Error:
                # Ending the session frees whatever it holds; a row left behind is stale.
                self._held.clear()
                self._session.discard()

    def check(self, held: HeldLock) -> None:
        """One query: this session still holds the advisory lock, and the row is ours."""
        pg = self._db.driver
        place = (held.endpoint, held.project_id)
        what = f"the lock of project {held.project_id} at {held.endpoint}"
        with self._session.mutex:
            if self._held.get(place) != held.token:
                raise LockLost(f"{what} is not held by this run; nothing more is sent")
            conn = self._held_on
            if conn is None or place not in self._held_here():
                raise LockLost(
                    f"{what} was lost: the connection to the state at {self._db.location} "
                    "closed; nothing more is sent"
                )
            try:
                row = conn.execute(
                    _CHECK,
                    {
                        "key": lock_key(*place),
                        "endpoint": held.endpoint,
                        "project": held.project_id,
                        "token": held.token,
                    },
                ).fetchone()
            except pg.Error as exc:
                # Whatever went wrong, end the session: then no lock of it outlives this run.
                self._held.clear()
                self._session.discard()
                why = f"the connection to the state at {self._db.location}"
                if getattr(exc, "sqlstate", None) == ADMIN_SHUTDOWN:
                    why += (
                        " was ended by the server (a restart, `reconciler state unlock` or "
                        "pg_terminate_backend)"
                    )
                else:
                    why += " broke"
                detail = one_line(exc)
                raise LockLost(
                    self._db.clean(f"{what} was lost: {why} ({detail}); nothing more is sent")
                ) from None
            if not (row and row[0] and row[1]):
                del self._held[place]
                with contextlib.suppress(pg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(*place),))
                raise LockLost(
                    f"{what} is no longer this run's in the state at {self._db.location} "
                    "(it was removed); nothing more is sent"
                )

    # --- reading and removing ------------------------------------------------------------------

    def holder(self, endpoint: str, project_id: str) -> LockHolder | None:
        """Who holds the lock now; a stale row (its session ended) holds nothing."""
        with self._data.use("read the locks in") as conn:
            if not self._db.ensure_schema(conn, create=False):
                return None
            row = conn.execute(
                f"SELECT {_LOCK_ROW} FROM locks WHERE endpoint = %s AND project_id = %s",
                (endpoint.rstrip("/"), project_id),
            ).fetchone()
        if row is None or not row[5]:
            return None
        return LockHolder(int(row[0]), row[1], row[2], row[3], row[4])

    def entries(self) -> list[LockEntry]:
        with self._data.use("read the locks in") as conn:
            if not self._db.ensure_schema(conn, create=False):
                return []
            rows = conn.execute(
                f"SELECT endpoint, project_id, {_LOCK_ROW} FROM locks "
                "ORDER BY since, endpoint, project_id"
            ).fetchall()
        return [
            LockEntry(
                row[0], row[1], LockHolder(int(row[2]), row[3], row[4], row[5], row[6]), row[7]
            )
            for row in rows
        ]

    def unlock(self, endpoint: str, project_id: str) -> LockHolder | None:
        """End the session holding the lock (if any) and remove its row."""
        pg = self._db.driver
        endpoint = endpoint.rstrip("/")
        key = lock_key(endpoint, project_id)
        with self._data.use("unlock a project in") as conn:
            if not self._db.ensure_schema(conn, create=False):
                return None
            row = conn.execute(
                "SELECT pid, host, command, since, run_id, token FROM locks "
                "WHERE endpoint = %s AND project_id = %s",
                (endpoint, project_id),
            ).fetchone()
            found = conn.execute(_HOLDER_PID, {"key": key}).fetchone()
            if found is not None:
                try:
                    conn.execute("SELECT pg_terminate_backend(%s)", (found[0],))
                except pg.errors.InsufficientPrivilege:
                    raise StateError(
                        f"cannot unlock project {project_id} at {endpoint}: the database role "
                        f"of the state at {self._db.location} may not end the session holding "
                        "it (that needs the holder's own role, membership in pg_signal_backend, "
                        "or a superuser)"
                    ) from None
                # Wait for that session to end (a waiting writer may take the lock at once).
                deadline = time.monotonic() + 10
                while (found[0],) in conn.execute(_HOLDER_PID, {"key": key}).fetchall():
                    if time.monotonic() > deadline:
                        raise StateError(
                            f"cannot unlock project {project_id} at {endpoint}: the session "
                            f"holding it in the state at {self._db.location} did not end"
                        )
                    time.sleep(0.05)
            if row is None:
                return None
            conn.execute(
                "DELETE FROM locks WHERE endpoint = %s AND project_id = %s AND token = %s",
                (endpoint, project_id, row[5]),
            )
        return LockHolder(int(row[0]), row[1], row[2], row[3], row[4])

    def close(self) -> None:
        """End the lock connection: every lock it holds is free at once."""
        with self._session.mutex:
            self._held.clear()
            self._held_on = None
            self._session.discard()
