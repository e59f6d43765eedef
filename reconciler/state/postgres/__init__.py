"""The state in PostgreSQL, shared by every runner and watch replica that is given its URL.

Selected by a ``postgresql://`` URL as the state (docs/state.md).  The tables are those of the
SQLite file (``write_only``, ``drift_episodes``, ``locks``) plus ``reconciler_schema``, which holds
the schema's version; they are created on the first write, in one transaction.  Reading a
database without them finds nothing and creates nothing: ``plan`` never writes.

Locks.  A lock is a session-level advisory lock on a 64-bit hash of (endpoint, project), taken
on a connection the store keeps for its locks, and a row in ``locks`` naming the holder, written
in the same transaction.  The advisory lock is what excludes: PostgreSQL grants it to one session
at a time, and frees it the moment that session ends.  A holder killed on this host closes its
connection at once; for a holder whose host vanishes, the lock connection asks the server to
probe the client (TCP keepalives: :data:`KEEPALIVE_IDLE_SECONDS` idle, then
:data:`KEEPALIVE_COUNT` probes :data:`KEEPALIVE_INTERVAL_SECONDS` apart) and to give up on
unacknowledged data after as long, so the server ends that session, and frees the lock, within
:data:`RELEASE_BOUND_SECONDS`.  A row whose advisory lock nobody holds is stale: the next
acquirer overwrites it.

The password of the URL never leaves this module: :attr:`PostgresStore.location` is the URL
without it, and every message goes through one sanitiser, since the driver's own messages may
quote the connection string.  The driver (psycopg 3, the ``postgres`` extra) is imported on first
use, so the package imports without it.
"""

from __future__ import annotations

import uuid
from typing import Self

from reconciler.state.postgres.connection import (
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE_SECONDS,
    KEEPALIVE_INTERVAL_SECONDS,
    RELEASE_BOUND_SECONDS,
    SCHEMA_VERSION,
    Channel,
    Database,
    lock_key,
    redact,
)
from reconciler.state.postgres.locks import PostgresLocks
from reconciler.state.postgres.tables import PostgresHistory, PostgresRecords

__all__ = [
    "KEEPALIVE_COUNT",
    "KEEPALIVE_IDLE_SECONDS",
    "KEEPALIVE_INTERVAL_SECONDS",
    "RELEASE_BOUND_SECONDS",
    "SCHEMA_VERSION",
    "PostgresHistory",
    "PostgresLocks",
    "PostgresRecords",
    "PostgresStore",
    "lock_key",
    "redact",
]


class PostgresStore:
    """The state in one PostgreSQL database: ``PostgresStore("postgresql://user@host/db")``.

    Connections open on first use: one for records and history, one for locks (its session is
    the lock).  :meth:`close` ends both, which frees every lock this store still holds.
    """

    def __init__(self, url: str, *, run_id: str | None = None) -> None:
        self._db = Database(url)
        self._session = Channel(self._db)
        self._records = PostgresRecords(self._db, self._session)
        self._locks = PostgresLocks(self._db, self._session, run_id or uuid.uuid4().hex)
        self._history = PostgresHistory(self._db, self._session)

    @property
    def location(self) -> str:
        return self._db.location

    @property
    def records(self) -> PostgresRecords:
        return self._records

    @property
    def locks(self) -> PostgresLocks:
        return self._locks

    @property
    def history(self) -> PostgresHistory:
        return self._history

    def close(self) -> None:
        self._locks.close()
        with self._session.mutex:
            self._session.discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"
