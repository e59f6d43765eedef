"""The PostgreSQL connections of a store: the driver, the schema and its version, the
sanitiser that keeps the URL's password out of every message."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from reconciler.api.config import url_passwords
from reconciler.state.base import POSTGRES_INSTALL, StateError

if TYPE_CHECKING:
    import psycopg


SCHEMA_VERSION = 1
CONNECT_TIMEOUT_SECONDS = 10
# How soon the server ends the session of a lock holder whose host vanished (docs/state.md).
KEEPALIVE_IDLE_SECONDS = 15
KEEPALIVE_INTERVAL_SECONDS = 5
KEEPALIVE_COUNT = 6
RELEASE_BOUND_SECONDS = KEEPALIVE_IDLE_SECONDS + KEEPALIVE_INTERVAL_SECONDS * KEEPALIVE_COUNT

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


def _driver() -> ModuleType:
    """psycopg, or a StateError with the install command."""
    try:
        import psycopg
    except ImportError:
        raise StateError(
            f"a postgresql:// state needs the PostgreSQL driver: {POSTGRES_INSTALL}"
        ) from None
    return psycopg


def advisory_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for ``parts`` (one namespace per use)."""
    digest = hashlib.blake2b("\0".join(("reconciler", *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_key(endpoint: str, project_id: str) -> int:
    """The advisory lock key of (endpoint, project): the endpoint without a trailing /."""
    return advisory_key("lock", endpoint.rstrip("/"), project_id)


_SCHEMA_KEY = advisory_key("schema")
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
        found += url_passwords(url)
    else:
        found += [m.group(2).strip("'") for m in _KV_PASSWORD.finditer(url)]
    if os.environ.get("PGPASSWORD"):
        found.append(os.environ["PGPASSWORD"])
    variants = {form for secret in found for form in (secret, unquote(secret), quote(secret))}
    return sorted((v for v in variants if v), key=len, reverse=True)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()).removeprefix("connection failed: ")
    return text or type(exc).__name__


class Database:
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
            self.clean(f"cannot {doing} the state at {self.location}: {one_line(exc)}")
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
                self.clean(f"cannot connect to the state at {self.location}: {one_line(exc)}")
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


class Channel:
    """One connection, opened on first use and reopened after it broke; one user at a time."""

    def __init__(self, db: Database, *, keepalive: bool = False) -> None:
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
