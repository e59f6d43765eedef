"""Rows of a SQLite state written as another process would have left them (tests only)."""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

from reconciler.state.sqlite import SqliteStore


def leave_row_of_an_earlier_process_with_this_pid(path: Path, endpoint: str, project: str) -> None:
    """The lock row a process with this very pid on this host left when it died."""
    with SqliteStore(path) as store:
        store.records.record("p", "a", "fp")  # creates the file and its tables
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO locks (endpoint, project_id, token, pid, host, command, since) "
            "VALUES (?, ?, 'left-behind', ?, ?, 'apply', '2026-01-01T00:00:00Z')",
            (endpoint, project, os.getpid(), socket.gethostname()),
        )
