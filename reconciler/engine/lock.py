"""The advisory write lock per (endpoint, project), kept in the state file.

Two writers against one project at once (two ``apply`` runs, an apply during a
``watch --self-heal`` cycle) would each send writes planned from a live state the other is
changing, and an older saved plan could be applied after a newer one.  As with Terraform's
state lock, every writer of this tool takes the lock before it plans what it will send and
gives it back when it is done.  A second writer fails at once, naming the holder (command, pid,
host, since when), or waits up to a timeout.

The lock is a row in the ``locks`` table of the state file (``.reconciler/state.sqlite`` by
default), taken in an IMMEDIATE transaction.  A row left by a process of this host that no longer
runs (it crashed or was killed) is taken over; a holder on another host cannot be checked, so it
is reported, and docs/apply.md says how to remove it by hand.

    lock = ProjectLock(state_path)
    with lock.hold(endpoint, project_id, command="apply", timeout=30):
        ...  # plan, check, send
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.engine.state import DEFAULT_STATE_PATH, StateError
from reconciler.errors import ReconcilerError

_SCHEMA = """
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
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock: enough for a person to find the process."""

    pid: int
    host: str
    command: str
    since: str  # RFC 3339, UTC

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid} on {self.host}, since {self.since})"


@dataclass(frozen=True)
class HeldLock:
    """A lock this process holds; give it to :meth:`ProjectLock.release`."""

    endpoint: str
    project_id: str
    token: str


class LockHeld(ReconcilerError):
    """Another writer holds the lock of this project."""

    def __init__(
        self, endpoint: str, project_id: str, holder: LockHolder, waited: float = 0.0
    ) -> None:
        waited_text = f" (waited {waited:g}s)" if waited else ""
        hint = (
            "Wait for it to finish, or pass --lock-timeout DURATION to wait for it."
            if not waited
            else "Try again later, or wait longer with a larger --lock-timeout."
        )
        super().__init__(
            f"project {project_id} at {endpoint} is locked by {holder.describe()}{waited_text}; "
            f"nothing was sent. {hint}"
        )
        self.endpoint = endpoint
        self.project_id = project_id
        self.holder = holder
        self.waited = waited


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user
        return True
    return True


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _holder(row: tuple[object, ...]) -> LockHolder:
    return LockHolder(int(str(row[0])), str(row[1]), str(row[2]), str(row[3]))


class ProjectLock:
    """Take and release the write lock of a project; :meth:`hold` is the context manager."""

    def __init__(self, path: str | Path = DEFAULT_STATE_PATH) -> None:
        self.path = Path(path)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._mutex = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """The lock's connection, opened once and kept while this object is used (each open
        costs a schema check and a sync); closed by :meth:`close`."""
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable enough for a lock row
                conn.execute(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise StateError(f"cannot open the state file {self.path}: {exc}") from exc
            self._conn = conn
        yield self._conn

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def holder(self, endpoint: str, project_id: str) -> LockHolder | None:
        """Who holds the lock now, if anyone."""
        if not self.path.exists():
            return None
        with self._mutex, self._connect() as conn:
            try:
                row = conn.execute(
                    "SELECT pid, host, command, since FROM locks "
                    "WHERE endpoint = ? AND project_id = ?",
                    (endpoint.rstrip("/"), project_id),
                ).fetchone()
            except sqlite3.Error as exc:
                raise StateError(f"cannot read the lock in {self.path}: {exc}") from exc
        return None if row is None else _holder(row)

    def acquire(
        self,
        endpoint: str,
        project_id: str,
        *,
        command: str = "apply",
        timeout: float = 0.0,
        on_wait: Callable[[LockHolder], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> HeldLock:
        """Take the lock, waiting up to ``timeout`` seconds; :class:`LockHeld` if it stays taken.

        ``on_wait(holder)`` is called once when the lock is found taken and waiting begins.
        """
        endpoint = endpoint.rstrip("/")
        started = time.monotonic()
        told = False
        while True:
            taken = self._try(endpoint, project_id, command)
            if isinstance(taken, str):
                return HeldLock(endpoint, project_id, taken)
            waited = time.monotonic() - started
            if waited >= timeout:
                raise LockHeld(endpoint, project_id, taken, round(waited, 1) if timeout else 0.0)
            if on_wait is not None and not told:
                on_wait(taken)
                told = True
            sleep(min(POLL_SECONDS, timeout - waited))

    def release(self, held: HeldLock) -> None:
        """Give the lock back (only if this holder still has it)."""
        with self._mutex, self._connect() as conn:
            try:
                conn.execute(
                    "DELETE FROM locks WHERE endpoint = ? AND project_id = ? AND token = ?",
                    (held.endpoint, held.project_id, held.token),
                )
            except sqlite3.Error as exc:
                raise StateError(f"cannot release the lock in {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def hold(
        self,
        endpoint: str,
        project_id: str,
        *,
        command: str = "apply",
        timeout: float = 0.0,
        on_wait: Callable[[LockHolder], None] | None = None,
    ) -> Iterator[HeldLock]:
        held = self.acquire(endpoint, project_id, command=command, timeout=timeout, on_wait=on_wait)
        try:
            yield held
        finally:
            try:
                self.release(held)
            finally:
                self.close()

    def _try(self, endpoint: str, project_id: str, command: str) -> str | LockHolder:
        """Take the lock if it is free (or its holder died on this host): its token; else the
        holder."""
        token = uuid.uuid4().hex
        with self._mutex, self._connect() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute(
                        "SELECT pid, host, command, since FROM locks "
                        "WHERE endpoint = ? AND project_id = ?",
                        (endpoint, project_id),
                    ).fetchone()
                    if row is not None:
                        holder = _holder(row)
                        if holder.host != self.host or _alive(holder.pid):
                            conn.execute("ROLLBACK")
                            return holder
                    conn.execute(
                        "INSERT OR REPLACE INTO locks "
                        "(endpoint, project_id, token, pid, host, command, since) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (endpoint, project_id, token, self.pid, self.host, command, _now()),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StateError(f"cannot take the lock in {self.path}: {exc}") from exc
        return token
