"""What the tool remembers between runs: write-only records, write locks, drift history.

The one door to the state: :func:`open_store` picks the backend from where the state lives (the
``state:`` setting), and everything else speaks to the :class:`StateStore` interface
(:mod:`reconciler.state.base`).  A path (or nothing: ``.reconciler/state.sqlite``) is a local
SQLite file; a ``postgresql://`` URL is a database shared by a fleet of runners.
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.api.config import is_database_url
from reconciler.state.base import (
    POSTGRES_INSTALL,
    CycleChanges,
    Episode,
    HeldLock,
    History,
    LockEntry,
    LockHeld,
    LockHolder,
    LockLost,
    Locks,
    Observation,
    Record,
    Resolution,
    StateError,
    StateStore,
    WriteOnlyRecords,
)
from reconciler.state.sqlite import DEFAULT_STATE_PATH, SqliteStore

__all__ = [
    "DEFAULT_STATE_PATH",
    "CycleChanges",
    "Episode",
    "HeldLock",
    "History",
    "LockEntry",
    "LockHeld",
    "LockHolder",
    "LockLost",
    "Locks",
    "Observation",
    "Record",
    "Resolution",
    "StateError",
    "StateStore",
    "WriteOnlyRecords",
    "open_store",
]


def open_store(location: str | os.PathLike[str] | None) -> StateStore:
    """The state store at ``location``: None for the default SQLite file, a ``postgresql://``
    (or ``postgres://``) URL for PostgreSQL, any other string or path for a SQLite file.

    Opening connects to nothing yet: the first read or write does, so a ``plan`` against a
    state that does not exist creates nothing.
    """
    if location is None:
        return SqliteStore(DEFAULT_STATE_PATH)
    if isinstance(location, str) and is_database_url(location):
        try:
            # Imported here: the driver is an optional extra, and SQLite users never need it.
            from reconciler.state.postgres import PostgresStore
        except ImportError as exc:
            if (exc.name or "").startswith("reconciler"):
                raise
            raise StateError(
                f"a postgresql:// state needs the PostgreSQL driver: {POSTGRES_INSTALL}"
            ) from exc
        return PostgresStore(location)
    return SqliteStore(Path(location))
