"""The PostgreSQL state against a real server (tests/pg_server.py): what only this backend does.

The behaviour both backends share is tests/state/test_contract.py's.  Here: the schema and its
version, the password that never shows, and locks held by real processes: the second process is
refused naming the first, a holder killed with SIGKILL frees the lock at once, and a holder whose
session the server ends (the database going away, or ``state unlock``) stops at its next check.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pg_server import PASSWORD, PASSWORD_ROLE, ROLE, PostgresServer

from reconciler.engine.history import Observation
from reconciler.state.base import LockHeld, LockLost, StateError
from reconciler.state.postgres import (
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE_SECONDS,
    KEEPALIVE_INTERVAL_SECONDS,
    RELEASE_BOUND_SECONDS,
    SCHEMA_VERSION,
    PostgresStore,
)

ENDPOINT = "https://metastudio.cn-north-4.example.com"
PROJECT = "p-shared"
REPO = Path(__file__).resolve().parents[2]

HOLDER = """
import os, sys
from reconciler.state.postgres import PostgresStore
store = PostgresStore(os.environ["STATE_URL"])
held = store.locks.acquire(sys.argv[1], sys.argv[2], command="apply")
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes stdin (or kills this process)
store.locks.release(held)
"""
CONTENDER = """
import os, sys
from reconciler.state.base import LockHeld
from reconciler.state.postgres import PostgresStore
store = PostgresStore(os.environ["STATE_URL"])
try:
    store.locks.acquire(sys.argv[1], sys.argv[2], command="apply")
except LockHeld as exc:
    print(exc)
    sys.exit(3)
print("acquired")
"""


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    with PostgresStore(postgres_url) as opened:
        yield opened


class Holder:
    """A real process holding the lock of (ENDPOINT, PROJECT) until released or killed."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, ENDPOINT + "/", PROJECT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "STATE_URL": url},
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def holder(postgres_url: str) -> Iterator[Holder]:
    started = Holder(postgres_url)
    try:
        yield started
    finally:
        started.stop()


def wait_until(condition: object, seconds: float) -> float:
    """Poll ``condition`` (a callable) until true; the time it took, or fail."""
    assert callable(condition)
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            pytest.fail(f"not true within {seconds}s")
        time.sleep(0.05)
    return time.monotonic() - start


# --- schema ------------------------------------------------------------------------------------


def test_reading_a_fresh_database_finds_nothing_and_creates_nothing(
    store: PostgresStore, postgres_url: str
) -> None:
    assert store.records.get_many("p", ["a", "b"]) == {}
    assert store.history.open_episodes("p") == {}
    assert store.locks.entries() == []
    assert store.locks.holder(ENDPOINT, "p") is None
    assert store.locks.unlock(ENDPOINT, "p") is None
    assert list(store.records.all_records()) == []
    assert tables(postgres_url) == set()


def test_first_write_creates_the_versioned_schema_shared_by_every_store(
    store: PostgresStore, postgres_url: str
) -> None:
    store.records.record("p-1", "asset-1", "fp-1", applied_at="2026-01-01T00:00:00Z")

    assert tables(postgres_url) == {"reconciler_schema", "write_only", "drift_episodes", "locks"}
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT version FROM reconciler_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]
    with PostgresStore(postgres_url) as other:
        assert other.records.get("p-1", "asset-1") is not None
        assert other.records.get("p-2", "asset-1") is None  # projects share the database


def test_stores_creating_the_schema_at_once_all_succeed(postgres_url: str) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with PostgresStore(postgres_url) as own:
                own.records.record("p", f"asset-{n}", "fp")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with PostgresStore(postgres_url) as reader:
        assert len(reader.records.get_many("p", [f"asset-{n}" for n in range(4)])) == 4


def test_a_schema_newer_than_the_tool_is_refused(store: PostgresStore, postgres_url: str) -> None:
    store.records.record("p", "a", "fp")
    with psycopg.connect(postgres_url) as conn:
        conn.execute("UPDATE reconciler_schema SET version = %s", (SCHEMA_VERSION + 41,))

    with PostgresStore(postgres_url) as newer_state:
        expected = (
            f"the state at {newer_state.location} has schema version {SCHEMA_VERSION + 41}; "
            f"this reconciler knows up to {SCHEMA_VERSION}: upgrade reconciler"
        )
        with pytest.raises(StateError) as read:
            newer_state.records.get("p", "a")
        assert str(read.value) == expected
        with pytest.raises(StateError) as locking:
            newer_state.locks.acquire(ENDPOINT, "p")
        assert str(locking.value) == expected
    with psycopg.connect(postgres_url) as conn:  # and nothing was written
        assert conn.execute("SELECT count(*) FROM locks").fetchone() == (0,)


# --- the password ------------------------------------------------------------------------------


@pytest.fixture
def secret_database(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database(owner=PASSWORD_ROLE)
    try:
        yield name
    finally:
        postgres_server.drop_database(name)


def test_the_password_is_never_in_the_location_or_any_message(
    postgres_server: PostgresServer, secret_database: str
) -> None:
    good = postgres_server.url(secret_database, user=PASSWORD_ROLE, password=PASSWORD)
    with PostgresStore(good) as store:
        assert (
            store.location
            == f"postgresql://{PASSWORD_ROLE}@127.0.0.1:{postgres_server.port}/{secret_database}"
        )
        assert PASSWORD not in repr(store)
        store.records.record("p", "a", "fp")  # the password works
        assert store.records.get("p", "a") is not None

    messages: list[str] = []
    wrong = postgres_server.url(secret_database, user=PASSWORD_ROLE, password="Wr0ng-" + PASSWORD)
    # The server quotes a database name in its error: here the name is the password itself.
    quoted = postgres_server.url(PASSWORD, user=PASSWORD_ROLE, password=PASSWORD)
    in_query = (
        f"postgresql://{PASSWORD_ROLE}@127.0.0.1:{postgres_server.port}/{PASSWORD}"
        f"?password={PASSWORD}&connect_timeout=5"
    )
    gone = f"postgresql://{PASSWORD_ROLE}:{PASSWORD}@127.0.0.1:1/{secret_database}"
    for url in (wrong, quoted, in_query, gone):
        store = PostgresStore(url)
        assert PASSWORD not in store.location
        for attempt in (
            lambda s=store: s.records.get("p", "a"),
            lambda s=store: s.locks.acquire(ENDPOINT, "p"),
            lambda s=store: s.history.record_cycle("p", [], "2026-01-01T00:00:00Z"),
        ):
            with pytest.raises(StateError) as caught:
                attempt()
            messages.append(str(caught.value))
            assert caught.value.__cause__ is None and caught.value.__suppress_context__
        store.close()
    assert all(PASSWORD not in message for message in messages), messages
    assert "password authentication failed" in messages[0]
    assert f"the state at postgresql://{PASSWORD_ROLE}@127.0.0.1" in messages[0]
    assert 'database "***" does not exist' in messages[3]
    assert "Connection refused" in messages[-1]


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("postgresql://ci:p%40ss%3Aw%2Frd@db:5432/state", "postgresql://ci@db:5432/state"),
        ("postgres://:only-pw@db/state?sslmode=require", "postgres://db/state?sslmode=require"),
        (
            "postgresql://ci@db/state?password=pw&sslmode=verify-full",
            "postgresql://ci@db/state?sslmode=verify-full",
        ),
        ("host=db user=ci password='a b' dbname=state", "host=db user=ci dbname=state"),
    ],
)
def test_the_location_is_the_url_without_its_password(url: str, location: str) -> None:
    assert PostgresStore(url).location == location


# --- locks held by real processes --------------------------------------------------------------


def test_a_second_process_is_refused_naming_the_first(holder: Holder, postgres_url: str) -> None:
    contender = subprocess.run(
        [sys.executable, "-c", CONTENDER, ENDPOINT, PROJECT],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "STATE_URL": postgres_url},
        timeout=60,
    )

    assert contender.returncode == 3, contender.stderr
    assert f"project {PROJECT} at {ENDPOINT} is locked by apply (pid {holder.pid} on " in (
        contender.stdout
    )
    assert "nothing was sent" in contender.stdout


def test_a_holder_killed_with_sigkill_frees_the_lock_at_once(
    holder: Holder, store: PostgresStore
) -> None:
    [entry] = store.locks.entries()
    assert (entry.endpoint, entry.project_id, entry.holder.pid, entry.alive) == (
        ENDPOINT,
        PROJECT,
        holder.pid,
        True,
    )
    assert entry.holder.run_id
    with pytest.raises(LockHeld):
        store.locks.acquire(ENDPOINT, PROJECT)

    os.kill(holder.pid, signal.SIGKILL)
    holder.process.wait(timeout=10)
    waited = wait_until(lambda: store.locks.entries()[0].alive is False, seconds=5)
    assert waited < 2
    assert store.locks.holder(ENDPOINT, PROJECT) is None  # a stale row holds nothing

    held = store.locks.acquire(ENDPOINT, PROJECT)  # the stale row is taken over
    [entry] = store.locks.entries()
    assert (entry.holder.pid, entry.alive) == (os.getpid(), True)
    store.locks.check(held)


def test_a_waiting_acquirer_gets_the_lock_when_the_holder_dies(
    holder: Holder, store: PostgresStore
) -> None:
    told: list[int] = []
    threading.Timer(0.5, holder.process.kill).start()
    started = time.monotonic()

    held = store.locks.acquire(ENDPOINT, PROJECT, timeout=10, on_wait=lambda h: told.append(h.pid))

    assert time.monotonic() - started < 3
    assert told == [holder.pid]
    store.locks.check(held)


# --- check: the lock must still be this run's --------------------------------------------------


def backend_holding(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_check_raises_lock_lost_when_the_server_ends_the_session(
    store: PostgresStore, postgres_server: PostgresServer, postgres_url: str
) -> None:
    held = store.locks.acquire(ENDPOINT, PROJECT)
    store.locks.check(held)

    with postgres_server.admin() as admin:  # as a database restart or failover would
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_holding(postgres_url),))

    with pytest.raises(LockLost) as lost:
        store.locks.check(held)
    assert f"the lock of project {PROJECT} at {ENDPOINT} was lost" in str(lost.value)
    assert store.location in str(lost.value)
    with pytest.raises(LockLost):  # and stays lost
        store.locks.check(held)
    store.locks.release(held)  # nothing to give back: no error
    with PostgresStore(postgres_url) as other:
        other.locks.check(other.locks.acquire(ENDPOINT, PROJECT))


def test_unlock_ends_the_holder_which_then_loses_the_lock(
    store: PostgresStore, postgres_url: str
) -> None:
    held = store.locks.acquire(ENDPOINT + "/", PROJECT, command="watch")

    with PostgresStore(postgres_url) as operator:
        removed = operator.locks.unlock(ENDPOINT + "/", PROJECT)
        assert removed is not None
        assert (removed.command, removed.pid) == ("watch", os.getpid())
        assert operator.locks.entries() == []
        with pytest.raises(LockLost):
            store.locks.check(held)
        taken = operator.locks.acquire(ENDPOINT, PROJECT)
        operator.locks.check(taken)
        assert operator.locks.unlock(ENDPOINT, "p-other") is None


def test_after_unlock_a_waiting_writer_takes_the_lock(
    store: PostgresStore, postgres_url: str
) -> None:
    store.locks.acquire(ENDPOINT, PROJECT)
    with PostgresStore(postgres_url) as waiter, PostgresStore(postgres_url) as operator:
        taken: list[object] = []
        waiting = threading.Thread(
            target=lambda: taken.append(waiter.locks.acquire(ENDPOINT, PROJECT, timeout=20))
        )
        waiting.start()
        time.sleep(0.3)
        started = time.monotonic()

        removed = operator.locks.unlock(ENDPOINT, PROJECT)

        assert time.monotonic() - started < 5
        assert removed is not None and removed.pid == os.getpid()
        waiting.join(timeout=20)
        assert len(taken) == 1
        [entry] = operator.locks.entries()  # the new holder's row was not removed
        assert entry.alive is True


def test_unlock_without_the_privilege_to_end_the_holder_says_so(
    store: PostgresStore, postgres_server: PostgresServer, postgres_url: str
) -> None:
    held = store.locks.acquire(ENDPOINT, PROJECT)
    with psycopg.connect(postgres_url, autocommit=True) as owner:  # it may read, not end others
        owner.execute(f'GRANT SELECT, DELETE ON reconciler_schema, locks TO "{PASSWORD_ROLE}"')
    dbname = postgres_url.rsplit("/", 1)[1]
    other_role = postgres_server.url(dbname, user=PASSWORD_ROLE, password=PASSWORD)

    with PostgresStore(other_role) as operator, pytest.raises(StateError) as refused:
        operator.locks.unlock(ENDPOINT, PROJECT)

    assert "may not end the session holding it" in str(refused.value)
    assert "pg_signal_backend" in str(refused.value)
    assert PASSWORD not in str(refused.value)
    store.locks.check(held)  # still held
    assert [entry.alive for entry in store.locks.entries()] == [True]


def test_check_trusts_the_advisory_lock_not_the_row(store: PostgresStore) -> None:
    held = store.locks.acquire(ENDPOINT, PROJECT)
    conn = store.locks._session.conn  # the session holding it lets go behind the store's back
    assert conn is not None
    conn.execute("SELECT pg_advisory_unlock_all()")

    with pytest.raises(LockLost, match="is no longer this run's"):
        store.locks.check(held)


def test_released_lock_is_free_and_no_longer_checks(
    store: PostgresStore, postgres_url: str
) -> None:
    held = store.locks.acquire(ENDPOINT, PROJECT)
    store.locks.release(held)

    assert store.locks.entries() == []
    with pytest.raises(LockLost):
        store.locks.check(held)
    with PostgresStore(postgres_url) as other:
        other.locks.check(other.locks.acquire(ENDPOINT, PROJECT))


def test_never_two_holders_at_once(postgres_url: str) -> None:
    inside: list[int] = []
    overlaps: list[int] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with PostgresStore(postgres_url) as own:
                for _ in range(15):
                    with own.locks.hold(ENDPOINT, PROJECT, timeout=30) as held:
                        inside.append(n)
                        if len(inside) > 1:
                            overlaps.append(n)
                        own.locks.check(held)
                        time.sleep(0.005)
                        inside.remove(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and overlaps == []


def test_the_lock_connection_asks_the_server_to_drop_a_vanished_holder(
    store: PostgresStore,
) -> None:
    store.locks.acquire(ENDPOINT, PROJECT)
    conn = store.locks._session.conn  # the session that holds the lock
    assert conn is not None
    settings = {
        name: conn.execute(f"SELECT current_setting('{name}')").fetchone()
        for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
    }
    assert settings == {
        "tcp_keepalives_idle": (str(KEEPALIVE_IDLE_SECONDS),),
        "tcp_keepalives_interval": (str(KEEPALIVE_INTERVAL_SECONDS),),
        "tcp_keepalives_count": (str(KEEPALIVE_COUNT),),
    }
    assert RELEASE_BOUND_SECONDS <= 60  # docs/state.md promises well under two minutes


# --- history -----------------------------------------------------------------------------------


def test_two_recorders_of_one_project_take_turns(postgres_url: str) -> None:
    errors: list[BaseException] = []

    def record(n: int) -> None:
        try:
            with PostgresStore(postgres_url) as own:
                for cycle in range(5):
                    own.history.record_cycle(
                        "p",
                        [Observation(f"a{i}", "drifted", True, ("name",)) for i in range(20)],
                        f"2026-01-01T00:0{cycle}:0{n}Z",
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with PostgresStore(postgres_url) as reader:
        opened = reader.history.open_episodes("p")
    assert len(opened) == 20
    assert {episode.cycles for episode in opened.values()} == {10}


# --- without the driver ------------------------------------------------------------------------


def test_without_the_driver_the_package_imports_and_the_store_names_the_install() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import reconciler.state.postgres as pg\n"
        "from reconciler.state.base import StateError\n"
        "try:\n"
        "    pg.PostgresStore('postgresql://u@127.0.0.1/db')\n"
        "except StateError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'metastudio-reconciler[postgres]'" in done.stdout


def test_the_test_server_role_is_not_a_superuser(postgres_url: str) -> None:
    """``state unlock`` is tested as an ordinary role, as users run it."""
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute(
            "SELECT current_user, usesuper FROM pg_user WHERE usename = current_user"
        ).fetchone() == (ROLE, False)
