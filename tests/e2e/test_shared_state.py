"""One PostgreSQL state shared by several runners and watch replicas, end to end: real CLI
processes in separate working directories, sharing nothing but the state's URL, against the
emulator and the suite's PostgreSQL server (tests/pg_server.py).

The state reaches every process only through ``RECONCILER_STATE``, as a CI secret would.  One
emulator serves the module (reset before each test); each test gets a fresh database.
"""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from reconciler.emulator.samples import asset_id as aid
from reconciler.emulator.testing import RunningEmulator, run_emulator
from tests.e2e.cli_runner import Cli
from tests.pg_server import PASSWORD, PASSWORD_ROLE, PostgresServer

pytestmark = pytest.mark.e2e

ASSETS = 8
HOST = socket.gethostname()


def avatar(i: int) -> dict[str, Any]:
    return {
        "asset_id": aid(i),
        "asset_name": f"Avatar {i}",
        "asset_description": "live",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "tags": ["NEWS"],
    }


def manifests(specs: dict[int, str]) -> str:
    """One manifest per asset number, each with the given spec (YAML lines)."""
    return "---\n".join(
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
        f"metadata:\n  asset_id: {aid(i)}\nspec:\n" + textwrap.indent(spec, "  ")
        for i, spec in specs.items()
    )


def described(text: str, count: int = ASSETS) -> dict[int, str]:
    """Manifests giving the first ``count`` assets the description ``text``."""
    return {i: f"asset_description: {text}\n" for i in range(1, count + 1)}


class Runner(Cli):
    """A CI runner: its own working directory and manifests, the state only from its env."""

    def __init__(self, emu: RunningEmulator, cwd: Path, state: str | None) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        super().__init__(emu, cwd)
        self.env.pop("RECONCILER_STATE", None)
        self.env.pop("PGPASSWORD", None)
        if state is not None:
            self.env["RECONCILER_STATE"] = state

    def write(self, specs: dict[int, str]) -> None:
        directory = self.cwd / "manifests"
        directory.mkdir(exist_ok=True)
        (directory / "assets.yaml").write_text(manifests(specs), encoding="utf-8")

    def apply(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("--no-color", "apply", "--auto-approve", "--force", *extra)

    def start_apply(self, *extra: str) -> Background:
        return Background(self.start("--no-color", "apply", "--auto-approve", "--force", *extra))


class Background:
    """A run in the background whose output is collected as it comes (threads drain the pipes,
    so the process never blocks on a full pipe)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.chunks: list[str] = []
        self.readers = [
            threading.Thread(target=self._drain, args=(stream,), daemon=True)
            for stream in (proc.stdout, proc.stderr)
        ]
        for reader in self.readers:
            reader.start()

    def _drain(self, stream: Any) -> None:
        for line in iter(stream.readline, ""):
            self.chunks.append(line)

    @property
    def output(self) -> str:
        return "".join(self.chunks)

    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self) -> tuple[int, str]:
        code = self.proc.wait(timeout=60)
        for reader in self.readers:
            reader.join(timeout=10)
        return code, self.output


def wait_until(condition: Callable[[], object], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def puts(emu: RunningEmulator) -> list[dict[str, Any]]:
    return [e for e in emu.requests() if e["method"] == "PUT"]


def arrived(entry: dict[str, Any]) -> datetime:
    """When the emulator received a request (the log's ``time``, before injected latency)."""
    return datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def descriptions(emu: RunningEmulator) -> dict[int, str]:
    found: dict[int, str] = {}
    for i in range(1, ASSETS + 1):
        stored = emu.store.get(aid(i))
        assert stored is not None
        found[i] = stored["asset_description"]
    return found


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


@pytest.fixture(scope="module")
def shared_emu() -> Iterator[RunningEmulator]:
    with run_emulator([avatar(i) for i in range(1, ASSETS + 1)]) as emu:
        yield emu


@pytest.fixture
def emu(shared_emu: RunningEmulator) -> RunningEmulator:
    """The module's emulator, back to its seeded assets, no latency and an empty log."""
    shared_emu.store.seed([avatar(i) for i in range(1, ASSETS + 1)], shared_emu.project_id)
    shared_emu.set_faults(latency_ms=0)
    shared_emu.clear_requests()
    return shared_emu


@pytest.fixture
def runners(emu: RunningEmulator, tmp_path: Path, postgres_url: str) -> Callable[[str], Runner]:
    """Runners by name, each in its own directory, all given the test database's URL."""

    def make(name: str) -> Runner:
        return Runner(emu, tmp_path / name, postgres_url)

    return make


# --- 1. two runners, one project: one fails naming the holder or waits, never both write ----


def test_a_second_runner_fails_naming_the_holder_or_waits_and_the_puts_never_interleave(
    emu: RunningEmulator, runners: Callable[[str], Runner]
) -> None:
    first, second = runners("a"), runners("b")
    first.write(described("from A", 4))
    second.write(described("from B", 4))
    emu.set_faults(latency_ms=1000)  # slow until the second runner is seen waiting

    holder = first.start_apply("--parallelism", "1")
    wait_until(emu.requests)  # A has read something: it took the lock before planning

    refused = second.apply()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"is locked by apply (pid {holder.pid} on {HOST}, since " in refused.stderr
    assert "nothing was sent" in refused.stderr
    assert_no_traceback(refused.stdout + refused.stderr)
    assert all(p["body"] != {"asset_description": "from B"} for p in puts(emu))

    waiting = second.start_apply("--lock-timeout", "60s")
    wait_until(lambda: "Waiting up to 60s for the project's lock" in waiting.output)
    assert holder.running(), "the first apply ended before the second one waited"
    assert f"held by apply (pid {holder.pid} on {HOST}" in waiting.output
    emu.set_faults(latency_ms=0)
    code, output = holder.finish()
    assert code == 0, output
    code, output = waiting.finish()
    assert code == 0, output

    sent = [p["body"]["asset_description"] for p in puts(emu)]
    assert sent == ["from A"] * 4 + ["from B"] * 4
    assert descriptions(emu) == {i: "from B" if i <= 4 else "live" for i in range(1, ASSETS + 1)}


# --- 2. the write-only record one runner wrote is seen by the other's plan -------------------

REVIEWED = {1: "review_config: {no_need_review: true}\n", 2: "asset_name: Avatar 2\n"}


@pytest.fixture
def read_only_url(postgres_server: PostgresServer, postgres_url: str) -> Iterator[str]:
    """The test database through a role that may only read it, as docs/gitops.md suggests for
    plans (grant with :func:`grant_read`, once the tables exist)."""
    role = f"reader_{uuid.uuid4().hex[:12]}"
    with postgres_server.admin() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield postgres_url.replace("postgresql://reconciler@", f"postgresql://{role}@")
    finally:
        with as_superuser(postgres_server, postgres_url) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
        with postgres_server.admin() as conn:
            conn.execute(f'DROP ROLE "{role}"')


def as_superuser(server: PostgresServer, url: str) -> Any:
    import psycopg

    return psycopg.connect(
        host=str(server.socket_dir),
        port=server.port,
        user="postgres",
        dbname=url.rsplit("/", 1)[1],
        autocommit=True,
    )


def grant_read(server: PostgresServer, url: str, reader_url: str) -> None:
    role = reader_url.split("://", 1)[1].split("@", 1)[0]
    with as_superuser(server, url) as conn:
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')


def test_the_write_only_record_of_one_runner_is_seen_by_the_plan_of_another(
    emu: RunningEmulator,
    runners: Callable[[str], Runner],
    tmp_path: Path,
    postgres_server: PostgresServer,
    postgres_url: str,
    read_only_url: str,
) -> None:
    first = runners("a")
    # B plans through a role that may only read the state (as the example pipelines do).
    second = Runner(emu, tmp_path / "b", read_only_url)
    local = Runner(emu, tmp_path / "local", None)  # a runner with its own fresh SQLite file
    for runner in (first, second, local):
        runner.write(REVIEWED)

    applied = first.apply()
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert [p["body"] for p in puts(emu)] == [{"review_config": {"no_need_review": True}}]
    grant_read(postgres_server, postgres_url, read_only_url)

    shared = second.run("--no-color", "plan", "--detailed-exitcode")
    assert shared.returncode == 0, shared.stdout + shared.stderr
    assert "No changes. Live assets match the manifests." in shared.stdout
    assert "unchanged since the last apply and will not be re-sent" in shared.stdout
    assert not (second.cwd / ".reconciler").exists()

    alone = local.run("--no-color", "plan", "--detailed-exitcode")
    assert alone.returncode == 2, alone.stdout + alone.stderr
    assert "~ review_config = (write-only, will be sent)" in alone.stdout
    assert "Plan: 1 to change, 1 unchanged." in alone.stdout

    emu.clear_requests()
    third = runners("c")
    third.write(REVIEWED)
    again = third.apply()
    assert again.returncode == 0, again.stdout + again.stderr
    assert puts(emu) == []


# --- 3. a holder killed with SIGKILL frees the lock at once -----------------------------------


def test_a_lock_holder_killed_with_sigkill_releases_the_lock_at_once(
    emu: RunningEmulator, runners: Callable[[str], Runner]
) -> None:
    first, second = runners("a"), runners("b")
    first.write(described("from A"))
    second.write(described("from B"))
    emu.set_faults(latency_ms=1000)
    holder = first.start_apply("--parallelism", "1")
    wait_until(emu.requests)
    listed = second.run("state", "locks")
    assert f"held by:  apply (pid {holder.pid} on {HOST})" in listed.stdout, listed.stdout
    assert "alive:    yes" in listed.stdout

    assert holder.running()
    holder.proc.kill()  # SIGKILL: no cleanup of any kind
    holder.finish()
    killed_at = time.monotonic()
    emu.set_faults(latency_ms=0)

    def released() -> bool:
        shown = second.run("state", "locks").stdout
        return f"pid {holder.pid}" not in shown or "alive:    no (the holder is gone)" in shown

    wait_until(released, seconds=5)
    applied = second.apply()
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert time.monotonic() - killed_at < 5
    assert set(descriptions(emu).values()) == {"from B"}


# --- 4. the database going away mid-run stops the writer before its next write ---------------


def terminate_sessions(server: PostgresServer, url: str) -> datetime:
    """End every session of the URL's database from a superuser connection; when it was done."""
    dbname = url.rsplit("/", 1)[1]
    with server.admin() as conn:
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchall()
    assert ended, "no session to end"
    return datetime.now(UTC)


def assert_stopped_before_its_next_write(
    emu: RunningEmulator, code: int, output: str, stopped_at: datetime
) -> None:
    """Exit 1 with the summary; no PUT arrived after ``stopped_at`` (but for one already on
    its way); every asset is either updated or reported not sent / not started."""
    assert code == 1, output
    assert_no_traceback(output)
    assert "Apply stopped (" in output, output
    late = [p for p in puts(emu) if arrived(p) > stopped_at + timedelta(milliseconds=50)]
    assert late == [], late
    now = descriptions(emu)
    updated = {i for i, text in now.items() if text == "new"}
    assert 0 < len(updated) < ASSETS, now
    summary = re.search(r"Apply stopped \(.*\): (.*)\.$", output, re.MULTILINE)
    assert summary is not None, output
    counts = {what: int(n) for n, what in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", summary[1])}
    assert counts["changed"] == len(updated), summary[1]
    assert counts.get("failed", 0) == 0, summary[1]
    not_sent = {i for i in now if f"{aid(i)}: not sent" in output}
    assert not_sent.isdisjoint(updated)
    assert len(not_sent) == counts.get("not sent", 0), summary[1]
    assert len(not_sent) + counts.get("not started", 0) == ASSETS - len(updated), summary[1]


def test_the_database_going_away_mid_apply_stops_it_before_its_next_write(
    emu: RunningEmulator,
    runners: Callable[[str], Runner],
    postgres_server: PostgresServer,
    postgres_url: str,
) -> None:
    runner = runners("a")
    runner.write(described("new"))
    emu.set_faults(latency_ms=300)
    proc = runner.start_apply("--parallelism", "1")
    wait_until(lambda: len(puts(emu)) >= 2)
    assert proc.running()
    stopped_at = terminate_sessions(postgres_server, postgres_url)
    emu.set_faults(latency_ms=0)  # a run that went on writing would now do so at once
    code, output = proc.finish()
    assert_stopped_before_its_next_write(emu, code, output, stopped_at)
    assert "was lost: the connection to the state at postgresql://reconciler@" in output, output


# --- 5. state locks / state unlock, on both backends ------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_state_locks_lists_the_holder_and_state_unlock_stops_it_before_its_next_write(
    backend: str, emu: RunningEmulator, tmp_path: Path, postgres_url: str
) -> None:
    state = postgres_url if backend == "postgresql" else None  # None: .reconciler/state.sqlite
    writer = Runner(emu, tmp_path / "writer", state)
    # With SQLite, the person runs in the writer's directory (the same file); with PostgreSQL,
    # anywhere the URL is known.
    person = Runner(emu, tmp_path / ("writer" if state is None else "person"), state)
    writer.write(described("new"))
    emu.set_faults(latency_ms=1000)
    proc = writer.start_apply("--parallelism", "1")
    wait_until(lambda: puts(emu))

    listed = person.run("state", "locks")
    assert listed.returncode == 0, listed.stderr
    where = ".reconciler/state.sqlite" if state is None else postgres_url
    assert f"1 lock in {where}" in listed.stdout, listed.stdout
    assert f"  project:  {emu.project_id}\n  endpoint: {emu.base_url}\n" in listed.stdout
    assert f"  held by:  apply (pid {proc.pid} on {HOST})\n" in listed.stdout
    assert "  alive:    yes\n" in listed.stdout

    refused = person.run("state", "unlock", emu.project_id)  # stdin is not a terminal
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "nothing was removed" in refused.stderr and "--force" in refused.stderr
    unknown = person.run("state", "unlock", "no-such-project", "--force")
    assert unknown.returncode == 1
    assert f"(locks: {emu.project_id} at {emu.base_url})" in unknown.stderr, unknown.stderr
    assert f"pid {proc.pid}" in person.run("state", "locks").stdout  # still there
    assert proc.running(), "the apply ended before the lock could be removed"

    removed = person.run("state", "unlock", emu.project_id, "--force")
    stopped_at = datetime.now(UTC)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert f"Removed the lock of project {emu.project_id} at {emu.base_url}" in removed.stdout
    assert f"(was held by apply (pid {proc.pid} on {HOST}, since " in removed.stdout
    emu.set_faults(latency_ms=0)  # a run that went on writing would now do so at once
    code, output = proc.finish()
    for text in (listed.stdout, refused.stderr, unknown.stderr, removed.stdout, output):
        assert_no_traceback(text)
    assert_stopped_before_its_next_write(emu, code, output, stopped_at)
    assert "No locks in" in person.run("state", "locks").stdout


# --- 6. state migrate: a real SQLite state into PostgreSQL, idempotent -----------------------


def undated(report: str) -> str:
    """A report without the moment it was made (its first line)."""
    return re.sub(r"(?m)^(Drift report for .*), at \S+\.$", r"\1.", report)


def test_state_migrate_copies_a_real_sqlite_state_once_and_plans_see_the_same(
    emu: RunningEmulator, tmp_path: Path, postgres_url: str
) -> None:
    local = Runner(emu, tmp_path / "local", None)
    local.write(REVIEWED)
    applied = local.apply()
    assert applied.returncode == 0, applied.stdout + applied.stderr
    emu.store.patch(aid(2), {"asset_name": "Edited in the console"})
    watched = local.run("watch", "--once")
    assert watched.returncode == 2, watched.stdout + watched.stderr

    first = local.run("state", "migrate", "--to", postgres_url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout == (
        f"Copied the state from .reconciler/state.sqlite to {postgres_url}:\n"
        "  write-only records: 1 copied, 0 already there\n"
        "  drift episodes:     1 copied, 0 already there\n"
        "Locks are not copied: they belong to the processes that hold them.\n"
    )
    again = local.run("state", "migrate", "--to", postgres_url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "  write-only records: 0 copied, 1 already there\n" in again.stdout
    assert "  drift episodes:     0 copied, 1 already there\n" in again.stdout

    shared = Runner(emu, tmp_path / "shared", postgres_url)
    shared.write(REVIEWED)
    outputs = {}
    for command in ("plan", "drift"):
        before = local.run("--no-color", command)
        after = shared.run("--no-color", command)
        assert (after.returncode, undated(after.stdout)) == (
            before.returncode,
            undated(before.stdout),
        )
        outputs[command] = after.stdout
    assert "drifted since 20" in outputs["drift"]  # the episode watch opened, from the copy
    assert "~ review_config" not in outputs["plan"]
    assert "will not be re-sent" in outputs["plan"]


# --- 7. the password never shows -------------------------------------------------------------


def encodings(user: str, secret: str) -> list[str]:
    """Every form a password could leak in: raw, URL-encoded, base64 (also as user:password)."""
    return [
        secret,
        quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"{user}:{secret}".encode()).decode(),
    ]


def assert_hidden(text: str, user: str, secret: str) -> None:
    for form in encodings(user, secret):
        assert form not in text, f"{form!r} shows in:\n{text}"


@pytest.fixture
def secret_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A database owned by the password role, and the URL carrying its password."""
    name = postgres_server.create_database(owner=PASSWORD_ROLE)
    try:
        yield postgres_server.url(name, user=PASSWORD_ROLE, password=PASSWORD)
    finally:
        postgres_server.drop_database(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_state_password_never_shows_in_output_logs_plans_or_errors(
    emu: RunningEmulator, tmp_path: Path, secret_url: str
) -> None:
    runner = Runner(emu, tmp_path / "a", secret_url)
    runner.write(REVIEWED)
    seen: list[str] = []

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = runner.run(*args)
        seen.extend((done.stdout, done.stderr))
        assert done.returncode == code, done.stdout + done.stderr
        if "-vv" not in args:  # -vv logs the traceback of a failure on purpose
            assert_no_traceback(done.stdout + done.stderr)
        return done

    run("-vv", "apply", "--auto-approve", "--force")
    run("-vv", "--log-format", "json", "plan", "--format", "json", "--out", "plan.json")
    seen.append((runner.cwd / "plan.json").read_text())
    locks = run("-vv", "state", "locks")
    assert f"in postgresql://{PASSWORD_ROLE}@127.0.0.1:" in locks.stdout
    assert [p["body"] for p in puts(emu)] == [{"review_config": {"no_need_review": True}}]
    for text in seen:
        assert_hidden(text, PASSWORD_ROLE, PASSWORD)

    wrong = "wr0ng/p@ss:w%rd+"
    runner.env["RECONCILER_STATE"] = secret_url.replace(PASSWORD, quote(wrong, safe=""))
    run("-vv", "plan", code=1)
    refused = run("plan", code=1)
    assert "cannot connect to the state at postgresql://reconciler_secret@" in refused.stderr
    assert "password authentication failed" in refused.stderr
    port = int(secret_url.rsplit(":", 1)[1].split("/")[0])
    runner.env["RECONCILER_STATE"] = secret_url.replace(f":{port}/", f":{free_port()}/")
    unreachable = run("-vv", "--log-format", "json", "apply", "--auto-approve", code=1)
    assert "cannot connect to the state at" in unreachable.stderr
    for text in seen:
        assert_hidden(text, PASSWORD_ROLE, PASSWORD)
        assert_hidden(text, PASSWORD_ROLE, wrong)


def test_a_password_in_the_config_file_is_refused_and_the_environment_overrides_state(
    emu: RunningEmulator, tmp_path: Path, secret_url: str, postgres_url: str
) -> None:
    runner = Runner(emu, tmp_path / "a", None)
    runner.write(REVIEWED)
    config = runner.cwd / "reconciler.yaml"
    config.write_text(f"state: {secret_url}\n", encoding="utf-8")
    refused = runner.run("plan")
    assert refused.returncode == 1
    assert_no_traceback(refused.stdout + refused.stderr)
    assert "reconciler.yaml" in refused.stderr and "RECONCILER_STATE" in refused.stderr
    assert_hidden(refused.stdout + refused.stderr, PASSWORD_ROLE, PASSWORD)
    assert puts(emu) == [] and emu.requests() == []

    config.write_text("state: local/state.sqlite\n", encoding="utf-8")
    runner.env["RECONCILER_STATE"] = postgres_url
    applied = runner.apply()
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert not (runner.cwd / "local").exists()  # the environment won over `state:`
    other = Runner(emu, tmp_path / "b", postgres_url)
    other.write(REVIEWED)
    assert other.run("plan", "--detailed-exitcode").returncode == 0  # B sees A's record

    del runner.env["RECONCILER_STATE"]
    resent = runner.run("--no-color", "plan", "--detailed-exitcode")
    assert resent.returncode == 2, resent.stdout + resent.stderr  # `state:` again: no record
    assert "~ review_config = (write-only, will be sent)" in resent.stdout


# --- 8. without the driver -------------------------------------------------------------------


def test_a_postgresql_state_without_the_driver_stops_with_the_install_command(
    emu: RunningEmulator, tmp_path: Path, postgres_url: str
) -> None:
    runner = Runner(emu, tmp_path / "a", postgres_url)
    runner.write(REVIEWED)
    hide_driver = (
        "import runpy, sys; sys.modules['psycopg'] = None; "
        "runpy.run_module('reconciler', run_name='__main__')"
    )
    for args in (("plan",), ("apply", "--auto-approve"), ("state", "locks")):
        argv = runner.argv(*args)
        done = subprocess.run(
            [sys.executable, "-c", hide_driver, *argv[3:]],
            cwd=runner.cwd,
            env=runner.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert_no_traceback(done.stdout + done.stderr)
        assert "pip install 'metastudio-reconciler[postgres]'" in done.stderr, done.stderr
    assert puts(emu) == []
