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

import contextlib
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

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
    History,
    LockEntry,
    LockHeld,
    LockHolder,
    LockLost,
    Locks,
    StateError,
    WriteOnlyRecords,
)
from reconciler.times import now_rfc3339

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 1
POLL_SECONDS = 0.2
CONNECT_TIMEOUT_SECONDS = 10
# How soon the server ends the session of a lock holder whose host vanished (docs/state.md).
KEEPALIVE_IDLE_SECONDS = 15
KEEPALIVE_INTERVAL_SECONDS = 5
KEEPALIVE_COUNT = 6
RELEASE_BOUND_SECONDS = KEEPALIVE_IDLE_SECONDS + KEEPALIVE_INTERVAL_SECONDS * KEEPALIVE_COUNT
INSTALL_HINT = "pip install 'metastudio-reconciler[postgres]'"

_SCHEMA_STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS write_only (
        project_id  text NOT NULL,
        asset_id    text NOT NULL,
        fingerprint text NOT NULL,
        applied_at  text NOT NULL,
        PRIMARY KEY (project_id, asset_id)
    )""",
    """CREATE TABLE IF NOT EXISTS drift_episodes (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        project_id      text NOT NULL,
        asset_id        text NOT NULL,
        status          text NOT NULL,
        first_seen      text NOT NULL,
        last_seen       text NOT NULL,
        cycles          integer NOT NULL,
        fields          text NOT NULL,
        manifest_digest text,
        resolved_at     text,
        resolution      text
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS drift_episodes_open
        ON drift_episodes (project_id, asset_id) WHERE resolved_at IS NULL""",
    "CREATE INDEX IF NOT EXISTS drift_episodes_asset ON drift_episodes (project_id, asset_id)",
    """CREATE TABLE IF NOT EXISTS locks (
        endpoint   text NOT NULL,
        project_id text NOT NULL,
        lock_key   bigint NOT NULL,
        token      text NOT NULL,
        pid        integer NOT NULL,
        host       text NOT NULL,
        command    text NOT NULL,
        run_id     text,
        since      text NOT NULL,
        PRIMARY KEY (endpoint, project_id)
    )""",
)
_EPISODE_COLUMNS = (
    "project_id, asset_id, status, first_seen, last_seen, cycles, fields, manifest_digest, "
    "resolved_at, resolution"
)
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


def _driver() -> ModuleType:
    """psycopg, or a StateError with the install command."""
    try:
        import psycopg
    except ImportError:
        raise StateError(
            f"a postgresql:// state needs the PostgreSQL driver: {INSTALL_HINT}"
        ) from None
    return psycopg


def _key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for ``parts`` (one namespace per use)."""
    digest = hashlib.blake2b("\0".join(("reconciler", *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_key(endpoint: str, project_id: str) -> int:
    """The advisory lock key of (endpoint, project): the endpoint without a trailing /."""
    return _key("lock", endpoint.rstrip("/"), project_id)


_SCHEMA_KEY = _key("schema")
_KV_PASSWORD = re.compile(r"\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\w://[^:/@\s]*):[^@\s]*@")


def redact(url: str) -> str:
    """``url`` without its password, whether in the user part or a ``password`` parameter."""
    if "://" not in url:  # the key=value form
        return " ".join(_KV_PASSWORD.sub("", url).split())
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hosts = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{hosts}" if user else hosts
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k.lower() not in ("password", "sslpassword")]
    query = urlencode(kept, safe="/:,") if len(kept) != len(pairs) else parts.query
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secrets(url: str) -> list[str]:
    """Every password the URL (or libpq's environment) holds, as it may appear in a message."""
    found: list[str] = []
    if "://" in url:
        parts = urlsplit(url)
        userinfo = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
        found += [v for k, v in parse_qsl(parts.query) if k.lower() in ("password", "sslpassword")]
    else:
        found += [m.group(2).strip("'") for m in _KV_PASSWORD.finditer(url)]
    if os.environ.get("PGPASSWORD"):
        found.append(os.environ["PGPASSWORD"])
    variants = {form for secret in found for form in (secret, unquote(secret), quote(secret))}
    return sorted((v for v in variants if v), key=len, reverse=True)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()).removeprefix("connection failed: ")
    return text or type(exc).__name__


class _Database:
    """The URL, its sanitiser and the connections; shared by the three kinds of memory."""

    def __init__(self, url: str) -> None:
        self.driver = _driver()
        self._url = url
        self._secrets = _secrets(url)
        self.location = self.clean(redact(url))
        self._schema_ready = False

    def clean(self, text: str) -> str:
        """``text`` without any password: the one way out for every message of this store."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _URL_PASSWORD.sub(r"\1:***@", text)
        return _KV_PASSWORD.sub(r"\1***", text)

    def error(self, doing: str, exc: BaseException) -> StateError:
        return StateError(
            self.clean(f"cannot {doing} the state at {self.location}: {_one_line(exc)}")
        )

    def connect(self, *, keepalive: bool = False) -> psycopg.Connection[Any]:
        """A new autocommit connection; ``keepalive``: also ask the server to probe this client
        (the lock connection: its session is the lock)."""
        pg = self.driver
        defaults: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": "reconciler",
            # This side's own probes, so a run notices a vanished server as soon.
            "keepalives": 1,
            "keepalives_idle": KEEPALIVE_IDLE_SECONDS,
            "keepalives_interval": KEEPALIVE_INTERVAL_SECONDS,
            "keepalives_count": KEEPALIVE_COUNT,
            "tcp_user_timeout": RELEASE_BOUND_SECONDS * 1000,
        }
        try:
            given = pg.conninfo.conninfo_to_dict(self._url)
            extra = {k: v for k, v in defaults.items() if k not in given}
            conn: psycopg.Connection[Any] = pg.connect(self._url, autocommit=True, **extra)
        except pg.Error as exc:
            raise StateError(
                self.clean(f"cannot connect to the state at {self.location}: {_one_line(exc)}")
            ) from None
        if keepalive:
            try:
                conn.execute(f"SET tcp_keepalives_idle = {KEEPALIVE_IDLE_SECONDS}")
                conn.execute(f"SET tcp_keepalives_interval = {KEEPALIVE_INTERVAL_SECONDS}")
                conn.execute(f"SET tcp_keepalives_count = {KEEPALIVE_COUNT}")
                conn.execute(f"SET tcp_user_timeout = {RELEASE_BOUND_SECONDS * 1000}")
                # A competing acquirer stuck mid-transaction must not stall this one for long.
                conn.execute("SET lock_timeout = '2s'")
            except pg.Error as exc:
                conn.close()
                raise self.error("prepare the lock connection to", exc) from None
        return conn

    def ensure_schema(self, conn: psycopg.Connection[Any], *, create: bool) -> bool:
        """Whether the tables exist (created first when ``create``); a schema newer than this
        tool knows is refused either way."""
        if self._schema_ready:
            return True
        exists = conn.execute("SELECT to_regclass('reconciler_schema') IS NOT NULL").fetchone()
        if exists and exists[0] and self._version(conn) == SCHEMA_VERSION:
            self._schema_ready = True
            return True
        if not create:
            return False
        with conn.transaction():
            # One creator at a time: concurrent CREATE ... IF NOT EXISTS can still collide.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_KEY,))
            conn.execute("CREATE TABLE IF NOT EXISTS reconciler_schema (version integer NOT NULL)")
            version = self._version(conn)
            for statement in _SCHEMA_STATEMENTS:
                conn.execute(statement)
            if version is None:
                conn.execute(
                    "INSERT INTO reconciler_schema (version) VALUES (%s)", (SCHEMA_VERSION,)
                )
        self._schema_ready = True
        return True

    def _version(self, conn: psycopg.Connection[Any]) -> int | None:
        row = conn.execute("SELECT max(version) FROM reconciler_schema").fetchone()
        version = None if row is None or row[0] is None else int(row[0])
        if version is not None and version > SCHEMA_VERSION:
            raise StateError(
                f"the state at {self.location} has schema version {version}; this reconciler "
                f"knows up to {SCHEMA_VERSION}: upgrade reconciler"
            )
        return version


class _Session:
    """One connection, opened on first use and reopened after it broke; one user at a time."""

    def __init__(self, db: _Database, *, keepalive: bool = False) -> None:
        self.db = db
        self.keepalive = keepalive
        self.mutex = threading.RLock()
        self.conn: psycopg.Connection[Any] | None = None

    def usable(self) -> bool:
        return self.conn is not None and not self.conn.closed and not self.conn.broken

    def open(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.discard()
            self.conn = self.db.connect(keepalive=self.keepalive)
        return self.conn

    def discard(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    @contextlib.contextmanager
    def use(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """The connection, under the mutex; a driver error becomes a clean StateError."""
        pg = self.db.driver
        with self.mutex:
            conn = self.open()
            try:
                yield conn
            except pg.Error as exc:
                if conn.broken or conn.closed:
                    self.discard()
                raise self.db.error(doing, exc) from None


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

    def __init__(self, db: _Database, session: _Session) -> None:
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


class PostgresLocks(Locks):
    """The write locks: advisory locks on a connection of their own, and their holders' rows."""

    def __init__(self, db: _Database, session: _Session, run_id: str) -> None:
        self._db = db
        self._data = session  # for reading and removing any holder's locks
        self._session = _Session(db, keepalive=True)  # its session holds this store's locks
        # The locks held, (endpoint, project) -> token, and the connection they are held on:
        # when that connection is gone, so are they.
        self._held: dict[tuple[str, str], str] = {}
        self._held_on: psycopg.Connection[Any] | None = None
        self.run_id = run_id
        self.host = socket.gethostname()
        self.pid = os.getpid()

    # --- taking and giving back ----------------------------------------------------------------

    def acquire(
        self,
        endpoint: str,
        project_id: str,
        *,
        command: str = "apply",
        timeout: float = 0.0,
        on_wait: Callable[[LockHolder], None] | None = None,
    ) -> HeldLock:
        endpoint = endpoint.rstrip("/")
        started = time.monotonic()
        told = False
        while True:
            taken = self._try(endpoint, project_id, command)
            if isinstance(taken, HeldLock):
                return taken
            waited = time.monotonic() - started
            if waited >= timeout:
                raise LockHeld(endpoint, project_id, taken, round(waited, 1) if timeout else 0.0)
            if on_wait is not None and not told:
                on_wait(taken)
                told = True
            time.sleep(min(POLL_SECONDS, timeout - waited))

    def _held_here(self) -> dict[tuple[str, str], str]:
        """The locks still held: none once the connection they were taken on is gone."""
        if self._held_on is None or self._held_on is not self._session.conn:
            self._held.clear()
        elif not self._session.usable():
            self._held.clear()
            self._session.discard()
        return self._held

    def _try(self, endpoint: str, project_id: str, command: str) -> HeldLock | LockHolder:
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
                raise LockLost(
                    self._db.clean(
                        f"{what} was lost: the connection to the state at {self._db.location} "
                        f"broke ({_one_line(exc)}); nothing more is sent"
                    )
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


class PostgresHistory(History):
    """The drift episodes; every change of a project's history runs under its own
    transaction-level advisory lock, so two recorders of one project take turns."""

    def __init__(self, db: _Database, session: _Session) -> None:
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
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_key("history", project_id),))

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


class PostgresStore:
    """The state in one PostgreSQL database: ``PostgresStore("postgresql://user@host/db")``.

    Connections open on first use: one for records and history, one for locks (its session is
    the lock).  :meth:`close` ends both, which frees every lock this store still holds.
    """

    def __init__(self, url: str, *, run_id: str | None = None) -> None:
        self._db = _Database(url)
        self._session = _Session(self._db)
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
