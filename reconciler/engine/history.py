"""Drift history: since when an asset has differed from its manifest, how often, and how it ended.

``reconciler watch`` records every cycle here; ``reconciler drift`` only reads it, to say
"drifted since ...".  History is a list of *episodes* per (project, asset): an episode opens the
first cycle an asset is seen drifted (or missing, or blocked), counts the cycles it stays so and
the fields involved, and closes the first cycle it is seen in sync, with the way it was resolved:

* ``self-heal``: the watcher applied the manifest back (recorded when the write is verified);
* ``manifest-change``: the manifest changed since the asset was last seen drifted, or no longer
  declares the asset;
* ``out-of-band``: the manifest did not change, so live was put back outside this tool (the
  console, another script, or a ``reconciler apply``).

An asset that cannot be compared (status ``error``) neither opens nor closes an episode: nothing is
known about it.  The table lives in the state store's SQLite file beside the write-only records.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from reconciler.engine.state import StateError, StateFile

_SCHEMA = """
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
_COLUMNS = (
    "project_id, asset_id, status, first_seen, last_seen, cycles, fields, manifest_digest, "
    "resolved_at, resolution"
)
_BATCH = 500


class Resolution(enum.StrEnum):
    SELF_HEAL = "self-heal"
    MANIFEST_CHANGE = "manifest-change"
    OUT_OF_BAND = "out-of-band"


@dataclass(frozen=True)
class Observation:
    """What one cycle saw of one managed asset."""

    asset_id: str
    status: str  # a DriftStatus value
    drifted: bool  # drifted, missing or blocked
    fields: tuple[str, ...] = ()
    manifest_digest: str | None = None


@dataclass(frozen=True)
class Episode:
    """One stretch of cycles during which an asset differed from its manifest."""

    project_id: str
    asset_id: str
    status: str
    first_seen: str  # RFC 3339, UTC
    last_seen: str
    cycles: int
    fields: tuple[str, ...]
    manifest_digest: str | None
    resolved_at: str | None = None
    resolution: Resolution | None = None

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def to_json(self) -> dict[str, object]:
        return {
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "cycles": self.cycles,
            "fields": list(self.fields),
            "resolved_at": self.resolved_at,
            "resolution": self.resolution.value if self.resolution else None,
        }


@dataclass(frozen=True)
class CycleChanges:
    """What one recorded cycle changed in the history."""

    opened: tuple[Episode, ...] = ()
    resolved: tuple[Episode, ...] = ()


def _episode(row: Sequence[object]) -> Episode:
    fields = json.loads(str(row[6]))
    return Episode(
        project_id=str(row[0]),
        asset_id=str(row[1]),
        status=str(row[2]),
        first_seen=str(row[3]),
        last_seen=str(row[4]),
        cycles=int(str(row[5])),
        fields=tuple(fields),
        manifest_digest=None if row[7] is None else str(row[7]),
        resolved_at=None if row[8] is None else str(row[8]),
        resolution=None if row[9] is None else Resolution(str(row[9])),
    )


class DriftHistory(StateFile):
    """The drift episodes in the state file; reading a file that does not exist finds none."""

    SCHEMA = _SCHEMA

    def open_episodes(
        self, project_id: str, asset_ids: Iterable[str] | None = None
    ) -> dict[str, Episode]:
        """The open episode of each asset that has one (of ``asset_ids``, or all)."""
        with self._lock:
            conn = self._connect(create=False)
            if conn is None:
                return {}
            try:
                return self._open(conn, project_id, asset_ids)
            except sqlite3.Error as exc:
                raise StateError(f"cannot read the drift history in {self.path}: {exc}") from exc

    def episodes(self, project_id: str, asset_id: str) -> list[Episode]:
        """Every episode of one asset, oldest first."""
        with self._lock:
            conn = self._connect(create=False)
            if conn is None:
                return []
            try:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM drift_episodes "
                    "WHERE project_id = ? AND asset_id = ? ORDER BY id",
                    (project_id, asset_id),
                ).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"cannot read the drift history in {self.path}: {exc}") from exc
        return [_episode(row) for row in rows]

    def record_cycle(
        self, project_id: str, observations: Sequence[Observation], now: str
    ) -> CycleChanges:
        """Record what one cycle saw of every managed asset of ``project_id``, in one transaction.

        Open episodes of assets the cycle no longer manages are resolved as manifest changes.
        """
        with self._lock:
            conn = self._connect(create=True)
            assert conn is not None
            try:
                with conn:
                    return self._record(conn, project_id, observations, now)
            except sqlite3.Error as exc:
                raise StateError(f"cannot write the drift history in {self.path}: {exc}") from exc

    def resolve(self, project_id: str, asset_id: str, how: Resolution, now: str) -> Episode | None:
        """Close the asset's open episode (if any) as resolved ``how``; returns it closed."""
        with self._lock:
            conn = self._connect(create=True)
            assert conn is not None
            try:
                with conn:
                    current = self._open(conn, project_id, [asset_id]).get(asset_id)
                    if current is None:
                        return None
                    return self._close(conn, current, how, now)
            except sqlite3.Error as exc:
                raise StateError(f"cannot write the drift history in {self.path}: {exc}") from exc

    # --- inside a transaction ------------------------------------------------------------------

    @staticmethod
    def _open(
        conn: sqlite3.Connection, project_id: str, asset_ids: Iterable[str] | None
    ) -> dict[str, Episode]:
        query = (
            f"SELECT {_COLUMNS} FROM drift_episodes WHERE project_id = ? AND resolved_at IS NULL"
        )
        if asset_ids is None:
            return {e.asset_id: e for e in map(_episode, conn.execute(query, (project_id,)))}
        ids = list(dict.fromkeys(asset_ids))
        out: dict[str, Episode] = {}
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            rows = conn.execute(
                f"{query} AND asset_id IN ({','.join('?' * len(chunk))})", (project_id, *chunk)
            )
            out.update((e.asset_id, e) for e in map(_episode, rows))
        return out

    def _record(
        self,
        conn: sqlite3.Connection,
        project_id: str,
        observations: Sequence[Observation],
        now: str,
    ) -> CycleChanges:
        current = self._open(conn, project_id, None)
        opened: list[Episode] = []
        resolved: list[Episode] = []
        seen: set[str] = set()
        for obs in observations:
            seen.add(obs.asset_id)
            episode = current.get(obs.asset_id)
            if obs.drifted and episode is None:
                conn.execute(
                    f"INSERT INTO drift_episodes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 1, ?, ?, "
                    "NULL, NULL)",
                    (
                        project_id,
                        obs.asset_id,
                        obs.status,
                        now,
                        now,
                        json.dumps(sorted(set(obs.fields))),
                        obs.manifest_digest,
                    ),
                )
                opened.append(
                    Episode(
                        project_id,
                        obs.asset_id,
                        obs.status,
                        now,
                        now,
                        1,
                        tuple(sorted(set(obs.fields))),
                        obs.manifest_digest,
                    )
                )
            elif obs.drifted and episode is not None:
                fields = sorted({*episode.fields, *obs.fields})
                conn.execute(
                    "UPDATE drift_episodes SET status = ?, last_seen = ?, cycles = cycles + 1, "
                    "fields = ?, manifest_digest = ? "
                    "WHERE project_id = ? AND asset_id = ? AND resolved_at IS NULL",
                    (
                        obs.status,
                        now,
                        json.dumps(fields),
                        obs.manifest_digest,
                        project_id,
                        obs.asset_id,
                    ),
                )
            elif episode is not None and obs.status == "in-sync":
                changed = (
                    obs.manifest_digest is not None
                    and episode.manifest_digest is not None
                    and obs.manifest_digest != episode.manifest_digest
                )
                how = Resolution.MANIFEST_CHANGE if changed else Resolution.OUT_OF_BAND
                resolved.append(self._close(conn, episode, how, now))
        for asset_id, episode in current.items():
            if asset_id not in seen:
                resolved.append(self._close(conn, episode, Resolution.MANIFEST_CHANGE, now))
        return CycleChanges(tuple(opened), tuple(resolved))

    @staticmethod
    def _close(conn: sqlite3.Connection, episode: Episode, how: Resolution, now: str) -> Episode:
        conn.execute(
            "UPDATE drift_episodes SET resolved_at = ?, resolution = ? "
            "WHERE project_id = ? AND asset_id = ? AND resolved_at IS NULL",
            (now, how.value, episode.project_id, episode.asset_id),
        )
        return replace(episode, resolved_at=now, resolution=how)
