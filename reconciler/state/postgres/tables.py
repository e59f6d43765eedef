"""Write-only records and drift episodes in PostgreSQL: the same rows as the SQLite file,
the same decisions (:func:`reconciler.engine.history.decide_cycle`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from reconciler.engine.history import (
    CycleChanges,
    Episode,
    Observation,
    Resolution,
    decide_cycle,
)
from reconciler.engine.records import Record
from reconciler.state.base import (
    History,
    WriteOnlyRecords,
)
from reconciler.state.postgres.connection import Channel, Database, advisory_key
from reconciler.times import now_rfc3339

if TYPE_CHECKING:
    import psycopg


_EPISODE_COLUMNS = (
    "project_id, asset_id, status, first_seen, last_seen, cycles, fields, manifest_digest, "
    "resolved_at, resolution"
)


def _episode(row: Sequence[Any]) -> Episode:
    return Episode(
        project_id=row[0],
        asset_id=row[1],
        status=row[2],
        first_seen=row[3],
        last_seen=row[4],
        cycles=int(row[5]),
        fields=tuple(json.loads(row[6])),
        manifest_digest=row[7],
        resolved_at=row[8],
        resolution=None if row[9] is None else Resolution(row[9]),
    )


def _episode_values(episode: Episode) -> tuple[object, ...]:
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
        None if episode.resolution is None else episode.resolution.value,
    )


class PostgresRecords(WriteOnlyRecords):
    """The write-only fingerprints, per (project, asset)."""

    def __init__(self, db: Database, session: Channel) -> None:
        self._db = db
        self._session = session

    def get_many(self, project_id: str, asset_ids: Iterable[str]) -> dict[str, Record]:
        ids = list(dict.fromkeys(asset_ids))
        if not ids:
            return {}
        with self._session.use("read the write-only records in") as conn:
            if not self._db.ensure_schema(conn, create=False):
                return {}
            rows = conn.execute(
                "SELECT asset_id, fingerprint, applied_at FROM write_only "
                "WHERE project_id = %s AND asset_id = ANY(%s)",
                (project_id, ids),
            ).fetchall()
        return {
            asset_id: Record(fingerprint, applied_at) for asset_id, fingerprint, applied_at in rows
        }

    def get(self, project_id: str, asset_id: str) -> Record | None:
        return self.get_many(project_id, [asset_id]).get(asset_id)

    def record(
        self, project_id: str, asset_id: str, fingerprint: str, applied_at: str | None = None
    ) -> Record:
        when = applied_at or now_rfc3339()
        with self._session.use("write the write-only record in") as conn:
            self._db.ensure_schema(conn, create=True)
            conn.execute(
                "INSERT INTO write_only (project_id, asset_id, fingerprint, applied_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (project_id, asset_id) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, applied_at = excluded.applied_at",
                (project_id, asset_id, fingerprint, when),
            )
        return Record(fingerprint, when)

    def all_records(self) -> Iterator[tuple[str, str, Record]]:
        with self._session.use("read the write-only records in") as conn:
            if not self._db.ensure_schema(conn, create=False):
                return iter(())
            rows = conn.execute(
                "SELECT project_id, asset_id, fingerprint, applied_at FROM write_only "
                "ORDER BY project_id, asset_id"
            ).fetchall()
        return iter([(project, asset, Record(fp, at)) for project, asset, fp, at in rows])


class PostgresHistory(History):
    """The drift episodes; every change of a project's history runs under its own
    transaction-level advisory lock, so two recorders of one project take turns."""

    def __init__(self, db: Database, session: Channel) -> None:
        self._db = db
        self._session = session

    def open_episodes(
        self, project_id: str, asset_ids: Iterable[str] | None = None
    ) -> dict[str, Episode]:
        with self._session.use("read the drift history in") as conn:
            if not self._db.ensure_schema(conn, create=False):
                return {}
            return self._open(conn, project_id, asset_ids)

    def episodes(self, project_id: str, asset_id: str) -> list[Episode]:
        with self._session.use("read the drift history in") as conn:
            if not self._db.ensure_schema(conn, create=False):
                return []
            rows = conn.execute(
                f"SELECT {_EPISODE_COLUMNS} FROM drift_episodes "
                "WHERE project_id = %s AND asset_id = %s ORDER BY id",
                (project_id, asset_id),
            ).fetchall()
        return [_episode(row) for row in rows]

    def record_cycle(
        self, project_id: str, observations: Sequence[Observation], now: str
    ) -> CycleChanges:
        """Record one cycle in one transaction (see
        :func:`reconciler.engine.history.decide_cycle`)."""
        with self._session.use("write the drift history in") as conn:
            self._db.ensure_schema(conn, create=True)
            with conn.transaction(), conn.cursor() as cur:
                self._serialise(conn, project_id)
                changes = decide_cycle(
                    project_id, self._open(conn, project_id, None), observations, now
                )
                if changes.opened:
                    cur.executemany(
                        f"INSERT INTO drift_episodes ({_EPISODE_COLUMNS}) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [_episode_values(e) for e in changes.opened],
                    )
                if changes.continued:
                    cur.executemany(
                        "UPDATE drift_episodes SET status = %s, last_seen = %s, cycles = %s, "
                        "fields = %s, manifest_digest = %s "
                        "WHERE project_id = %s AND asset_id = %s AND resolved_at IS NULL",
                        [
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
                        ],
                    )
                self._close(conn, changes.resolved)
        return changes

    def resolve(self, project_id: str, asset_id: str, how: Resolution, now: str) -> Episode | None:
        with self._session.use("write the drift history in") as conn:
            self._db.ensure_schema(conn, create=True)
            with conn.transaction():
                self._serialise(conn, project_id)
                current = self._open(conn, project_id, [asset_id]).get(asset_id)
                if current is None:
                    return None
                closed = current.closed(how, now)
                self._close(conn, [closed])
        return closed

    def all_episodes(self) -> Iterator[Episode]:
        with self._session.use("read the drift history in") as conn:
            if not self._db.ensure_schema(conn, create=False):
                return iter(())
            rows = conn.execute(
                f"SELECT {_EPISODE_COLUMNS} FROM drift_episodes ORDER BY id"
            ).fetchall()
        return iter([_episode(row) for row in rows])

    def import_episode(self, episode: Episode) -> bool:
        """Store a copied episode unless an equal one is there, or it is open and the asset
        already has an open episode (the one here is newer); True when it was added."""
        values = _episode_values(episode)
        same = " AND ".join(
            f"{column} IS NOT DISTINCT FROM %s" for column in _EPISODE_COLUMNS.split(", ")
        )
        with self._session.use("write the drift history in") as conn:
            self._db.ensure_schema(conn, create=True)
            with conn.transaction():
                self._serialise(conn, episode.project_id)
                if conn.execute(f"SELECT 1 FROM drift_episodes WHERE {same}", values).fetchone():
                    return False
                if episode.open and self._open(conn, episode.project_id, [episode.asset_id]):
                    return False
                conn.execute(
                    f"INSERT INTO drift_episodes ({_EPISODE_COLUMNS}) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    values,
                )
        return True

    # --- inside a transaction ------------------------------------------------------------------

    @staticmethod
    def _serialise(conn: psycopg.Connection[Any], project_id: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key("history", project_id),))

    @staticmethod
    def _open(
        conn: psycopg.Connection[Any], project_id: str, asset_ids: Iterable[str] | None
    ) -> dict[str, Episode]:
        query = (
            f"SELECT {_EPISODE_COLUMNS} FROM drift_episodes "
            "WHERE project_id = %s AND resolved_at IS NULL"
        )
        if asset_ids is None:
            rows = conn.execute(query, (project_id,)).fetchall()
        else:
            ids = list(dict.fromkeys(asset_ids))
            if not ids:
                return {}
            rows = conn.execute(f"{query} AND asset_id = ANY(%s)", (project_id, ids)).fetchall()
        return {episode.asset_id: episode for episode in map(_episode, rows)}

    @staticmethod
    def _close(conn: psycopg.Connection[Any], closed: Sequence[Episode]) -> None:
        """Mark the open episode of each asset of ``closed`` resolved as it says."""
        if not closed:
            return
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE drift_episodes SET resolved_at = %s, resolution = %s "
                "WHERE project_id = %s AND asset_id = %s AND resolved_at IS NULL",
                [
                    (
                        e.resolved_at,
                        None if e.resolution is None else e.resolution.value,
                        e.project_id,
                        e.asset_id,
                    )
                    for e in closed
                ],
            )
