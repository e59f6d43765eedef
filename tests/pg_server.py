"""A real PostgreSQL server for the suite (a pytest plugin, loaded by tests/conftest.py).

* ``postgres_server`` (session): one throwaway server per test process (per xdist worker),
  started with the Debian server's own tools (``initdb``, ``pg_ctl``) in a temporary directory,
  listening on a free 127.0.0.1 port and on a Unix socket in that directory; stopped and removed
  at the end of the session.  ``fsync`` is off: nothing in it needs to survive a crash.
* ``postgres_url`` (function): the URL of a fresh, empty database owned by the role
  ``reconciler`` (no password, trusted on loopback), dropped after the test.

Besides the trusted roles the server has one role, :data:`PASSWORD_ROLE`, that must give its
password (:data:`PASSWORD`), so tests can check that a password never shows.

Without the server's tools the fixtures skip, naming what is missing; with ``CI=true`` they fail
instead, so a CI image without them cannot pass by skipping.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import pytest

SUPERUSER = "postgres"
ROLE = "reconciler"  # owns each test database; trusted on loopback
PASSWORD_ROLE = "reconciler_secret"  # must give its password, even on loopback
PASSWORD = "s3cret-Pg-pass-9Zq"
SERVER_USER = "postgres"  # the system user the server runs as when the suite runs as root
_SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=200 -c shared_buffers=16MB"
)


def find_bin_dir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: initdb on PATH first (its real
    location, Debian links it from elsewhere), then the newest /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    ]
    for directory in candidates:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail in CI, where a missing server must never pass unnoticed."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A running throwaway server; :meth:`stop` is safe to call more than once."""

    bin_dir: Path
    root: Path
    port: int
    as_user: list[str]  # the command prefix that runs a tool as the server's user
    host: str = "127.0.0.1"
    _stopped: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, dbname: str, *, user: str = ROLE, password: str | None = None) -> str:
        """A ``postgresql://`` URL to ``dbname`` over loopback TCP."""
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def admin(self) -> Any:
        """A superuser connection (autocommit) over the Unix socket."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self, owner: str = ROLE) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        pg_ctl = str(self.bin_dir / "pg_ctl")
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                [*self.as_user, pg_ctl, "stop", "-D", str(self.data_dir), "-m", "immediate"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        """If pg_ctl could not stop it, end the server process itself (never leave one)."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGQUIT)  # the server's own immediate shutdown
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_server() -> PostgresServer:
    """Create and start a throwaway server (a second or two); skip or fail when impossible."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _unavailable(
            "no PostgreSQL server tools (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin; "
            "install Debian's `postgresql` package"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed: pip install -e '.[dev]'")
    as_user: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as its own user
        try:
            owner = pwd.getpwnam(SERVER_USER)
        except KeyError:
            _unavailable(f"running as root and there is no {SERVER_USER!r} system user")
        runuser = shutil.which("runuser")
        if runuser is None:
            _unavailable("running as root and `runuser` is missing")
        as_user = [runuser, "-u", SERVER_USER, "--"]
    root = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(bin_dir, root, 0, as_user)
    try:
        _initdb(server, owner)
        _start(server)
        _create_roles(server)
    except BaseException:
        server.stop()
        raise
    atexit.register(server.stop)  # also when the session ends without its teardown
    return server


def _run(server: PostgresServer, *args: str) -> None:
    done = subprocess.run(
        [*server.as_user, *args], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed: {done.stdout}{done.stderr}")


def _initdb(server: PostgresServer, owner: pwd.struct_passwd | None) -> None:
    server.socket_dir.mkdir()
    if owner is not None:
        os.chown(server.socket_dir, owner.pw_uid, owner.pw_gid)
    _run(
        server,
        str(server.bin_dir / "initdb"),
        "-D",
        str(server.data_dir),
        "-U",
        SUPERUSER,
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
        "--auth=trust",
    )
    # First match wins: the password role must authenticate even on loopback.
    (server.data_dir / "pg_hba.conf").write_text(
        "local all all trust\n"
        f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
        "host all all 127.0.0.1/32 trust\n"
    )


def _start(server: PostgresServer) -> None:
    """Start on a free port; another worker may take the same port first, so try again."""
    log = server.root / "server.log"
    for _attempt in range(5):
        server.port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {server.port} -k {server.socket_dir} "
            + _SERVER_OPTIONS
        )
        pg_ctl = [*server.as_user, str(server.bin_dir / "pg_ctl"), "-D", str(server.data_dir)]
        done = subprocess.run(
            [*pg_ctl, "start", "-w", "-t", "30", "-o", options, "-l", str(log)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0:
            return
        server._kill_postmaster()
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"the PostgreSQL server did not start: {done.stderr}{tail}")


def _create_roles(server: PostgresServer) -> None:
    with server.admin() as conn:
        conn.execute(f'CREATE ROLE "{ROLE}" LOGIN')
        conn.execute(f"CREATE ROLE \"{PASSWORD_ROLE}\" LOGIN PASSWORD '{PASSWORD}'")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)
