"""Where the write-only fingerprints live: a small SQLite file (docs/field-semantics.md §3).

The API never returns ``review_config`` or ``shared_config``, so the only way to know whether the
manifest changed them is to remember what was last applied.  One row per (project, asset) holds
the write-only fingerprint (see engine.fingerprint) and the time it was applied.  The file is
created on the first write; reading a store that does not exist yet simply finds no records, so
``plan`` never writes anything.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

from reconciler.errors import ReconcilerError
from reconciler.times import now_rfc3339

DEFAULT_STATE_PATH = Path(".reconciler/state.sqlite")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS write_only (
    project_id  TEXT NOT NULL,
    asset_id    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    applied_at  TEXT NOT NULL,
    PRIMARY KEY (project_id, asset_id)
)
"""
_BATCH = 500  # SQLite's default limit on host parameters is 999


class StateError(ReconcilerError):
    """The state file cannot be read or written."""


def open_state_file(path: Path, schema: str, *, create: bool) -> sqlite3.Connection | None:
    """A connection to the state file with ``schema`` in place; None when it does not exist
    and ``create`` is false.  Every table of the state store (write-only records, drift
    history, locks) lives in this one file, each opened through here."""
    if not create and not path.exists():
        return None
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(schema)
        conn.commit()
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"cannot open the state file {path}: {exc}") from exc
    return conn


@dataclass(frozen=True)
class Record:
    fingerprint: str
    applied_at: str  # RFC 3339, UTC


class StateFile:
    """One table group of the state file, opened lazily; safe to share between threads and
    tasks of one process.  Subclasses set ``SCHEMA`` and use ``_connect`` under ``_lock``."""

    SCHEMA: ClassVar[str] = ""

    def __init__(self, path: str | Path = DEFAULT_STATE_PATH) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self, *, create: bool) -> sqlite3.Connection | None:
        if self._conn is None:
            self._conn = open_state_file(self.path, self.SCHEMA, create=create)
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WriteOnlyState(StateFile):
    """The write-only fingerprint store."""

    SCHEMA = _SCHEMA

    def get(self, project_id: str, asset_id: str) -> Record | None:
        """The record of the last applied write-only values, if any."""
        return self.get_many(project_id, [asset_id]).get(asset_id)

    def get_many(self, project_id: str, asset_ids: Iterable[str]) -> dict[str, Record]:
        """Records for many assets at once (absent ids have none)."""
        ids = list(dict.fromkeys(asset_ids))
        out: dict[str, Record] = {}
        with self._lock:
            conn = self._connect(create=False)
            if conn is None:
                return out
            try:
                for start in range(0, len(ids), _BATCH):
                    chunk = ids[start : start + _BATCH]
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(
                        "SELECT asset_id, fingerprint, applied_at FROM write_only "
                        f"WHERE project_id = ? AND asset_id IN ({marks})",
                        (project_id, *chunk),
                    )
                    for asset_id, fingerprint, applied_at in rows:
                        out[asset_id] = Record(fingerprint, applied_at)
            except sqlite3.Error as exc:
                raise StateError(f"cannot read the state file {self.path}: {exc}") from exc
        return out

    def record(
        self, project_id: str, asset_id: str, fingerprint: str, applied_at: str | None = None
    ) -> Record:
        """Remember ``fingerprint`` as applied now (or at ``applied_at``)."""
        when = applied_at or now_rfc3339()
        with self._lock:
            conn = self._connect(create=True)
            assert conn is not None
            try:
                conn.execute(
                    "INSERT INTO write_only (project_id, asset_id, fingerprint, applied_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (project_id, asset_id) DO UPDATE SET "
                    "fingerprint = excluded.fingerprint, applied_at = excluded.applied_at",
                    (project_id, asset_id, fingerprint, when),
                )
                conn.commit()
            except sqlite3.Error as exc:
                raise StateError(f"cannot write the state file {self.path}: {exc}") from exc
        return Record(fingerprint, when)
