"""The state stores under test: every contract test runs once per backend.

* ``store``: a fresh, empty state (params ``sqlite``: a file in the test's temporary directory;
  ``postgres``: a fresh database of the suite's own PostgreSQL server, see tests/pg_server.py).
* ``reopen``: opens another connection to that same state, as a second process would (another
  writer, a later run); each is closed at the end of the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.state import StateStore
from reconciler.state.sqlite import SqliteStore

BACKENDS = ["sqlite", "postgres"]


def _open(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    """A new connection to the test's state of ``backend`` (the same state on every call)."""
    if backend == "sqlite":
        return SqliteStore(tmp_path / "state.sqlite")
    from reconciler.state.postgres import PostgresStore  # imports without the driver too

    url: str = request.getfixturevalue("postgres_url")
    store: StateStore = PostgresStore(url)
    return store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    with _open(request.param, request, tmp_path) as opened:
        yield opened


@pytest.fixture
def reopen(
    request: pytest.FixtureRequest, store: StateStore, tmp_path: Path
) -> Iterator[Callable[[], StateStore]]:
    backend = request.node.callspec.params["store"]
    opened: list[StateStore] = []

    def another() -> StateStore:
        opened.append(_open(backend, request, tmp_path))
        return opened[-1]

    yield another
    for each in opened:
        each.close()
