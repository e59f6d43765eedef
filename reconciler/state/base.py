"""The state interface: what the tool remembers between runs, whatever holds it.

Three kinds of memory, each a small protocol, all three kept by one :class:`StateStore`:

* :class:`WriteOnlyRecords`: per (project, asset), the fingerprint of the write-only values last
  applied (the API never returns ``review_config`` or ``shared_config``);
* :class:`Locks`: the advisory write lock per (endpoint, project), as Terraform's state lock:
  every writer takes it before it plans what it will send;
* :class:`History`: the drift episodes ``watch`` records and ``drift`` reads.

A backend implements the three over one connection or file (``state/sqlite.py``, the default;
``state/postgres/``, shared by a fleet).  Every failure of the store is a :class:`StateError`
naming where the state lives (never a password).  Reading a store that does not exist yet finds
nothing: ``plan`` never creates one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, Self

from reconciler.engine.history import CycleChanges, Episode, Observation, Resolution
from reconciler.engine.records import Record
from reconciler.errors import ReconcilerError

__all__ = [
    "CycleChanges",
    "Episode",
    "HeldLock",
    "History",
    "LockEntry",
    "LockHeld",
    "LockHolder",
    "LockLost",
    "Locks",
    "Observation",
    "Record",
    "Resolution",
    "StateError",
    "StateStore",
    "WriteOnlyRecords",
]


POLL_SECONDS = 0.2  # how often a writer waiting for a lock looks at it again

# How to get the PostgreSQL driver (the ``postgres`` extra), said wherever it is missing.
POSTGRES_INSTALL = "pip install 'metastudio-reconciler[postgres]'"


class StateError(ReconcilerError):
    """The state cannot be read or written (the message names where it lives)."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock: enough for a person to find the process."""

    pid: int
    host: str
    command: str
    since: str  # RFC 3339, UTC
    run_id: str | None = None  # a run's own id (backends that record it)

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid} on {self.host}, since {self.since})"


@dataclass(frozen=True)
class LockEntry:
    """One lock as ``reconciler state locks`` lists it."""

    endpoint: str
    project_id: str
    holder: LockHolder
    alive: bool | None = None  # None: cannot be told from here (a holder on another host)


@dataclass(frozen=True)
class HeldLock:
    """A lock this process holds; give it to :meth:`Locks.release`."""

    endpoint: str
    project_id: str
    token: str


class LockHeld(ReconcilerError):
    """Another writer holds the lock of this project."""

    def __init__(
        self, endpoint: str, project_id: str, holder: LockHolder, waited: float = 0.0
    ) -> None:
        waited_text = f" (waited {waited:g}s)" if waited else ""
        hint = (
            "Wait for it to finish, or pass --lock-timeout DURATION to wait for it."
            if not waited
            else "Try again later, or wait longer with a larger --lock-timeout."
        )
        super().__init__(
            f"project {project_id} at {endpoint} is locked by {holder.describe()}{waited_text}; "
            f"nothing was sent. {hint}"
        )
        self.endpoint = endpoint
        self.project_id = project_id
        self.holder = holder
        self.waited = waited


class LockLost(StateError):
    """A lock this run held is no longer its own (the store went away, or it was removed)."""


class WriteOnlyRecords(Protocol):
    """The fingerprints of the write-only values last applied, per (project, asset)."""

    def get_many(self, project_id: str, asset_ids: Iterable[str]) -> dict[str, Record]:
        """Records for many assets at once (absent ids have none)."""
        ...

    def get(self, project_id: str, asset_id: str) -> Record | None: ...

    def record(
        self, project_id: str, asset_id: str, fingerprint: str, applied_at: str | None = None
    ) -> Record:
        """Remember ``fingerprint`` as applied now (or at ``applied_at``)."""
        ...

    def all_records(self) -> Iterator[tuple[str, str, Record]]:
        """Every record as (project_id, asset_id, record): ``state migrate`` copies them."""
        ...


class Locks(Protocol):
    """The write lock per (endpoint, project); the endpoint is compared without a trailing /."""

    def try_acquire(self, endpoint: str, project_id: str, command: str) -> HeldLock | LockHolder:
        """Take the lock now if it is free (or its holder is known to be gone): the held lock;
        else who holds it.  Never waits; ``endpoint`` comes without its trailing /."""
        ...

    def acquire(
        self,
        endpoint: str,
        project_id: str,
        *,
        command: str = "apply",
        timeout: float = 0.0,
        on_wait: Callable[[LockHolder], None] | None = None,
    ) -> HeldLock:
        """Take the lock, waiting up to ``timeout`` seconds; :class:`LockHeld` if it stays
        taken.  ``on_wait(holder)`` is called once when waiting begins.  (One loop for every
        backend, over its :meth:`try_acquire`.)"""
        endpoint = endpoint.rstrip("/")
        started = time.monotonic()
        told = False
        while True:
            taken = self.try_acquire(endpoint, project_id, command)
            if isinstance(taken, HeldLock):
                return taken
            waited = time.monotonic() - started
            if waited >= timeout:
                raise LockHeld(endpoint, project_id, taken, round(waited, 1) if timeout else 0.0)
            if on_wait is not None and not told:
                on_wait(taken)
                told = True
            time.sleep(min(POLL_SECONDS, timeout - waited))

    def release(self, held: HeldLock) -> None:
        """Give the lock back (only if this holder still has it)."""
        ...

    def check(self, held: HeldLock) -> None:
        """Raise :class:`LockLost` unless ``held`` is still this holder's: every write checks
        it first, so nothing is sent without the lock."""
        ...

    def holder(self, endpoint: str, project_id: str) -> LockHolder | None:
        """Who holds the lock now, if anyone."""
        ...

    def entries(self) -> list[LockEntry]:
        """Every lock of the store, oldest first."""
        ...

    def unlock(self, endpoint: str, project_id: str) -> LockHolder | None:
        """Remove the lock whoever holds it (``state unlock``); the holder it had, if any."""
        ...

    @contextlib.contextmanager
    def hold(
        self,
        endpoint: str,
        project_id: str,
        *,
        command: str = "apply",
        timeout: float = 0.0,
        on_wait: Callable[[LockHolder], None] | None = None,
    ) -> Iterator[HeldLock]:
        """:meth:`acquire` for a block of work, released when it ends."""
        held = self.acquire(endpoint, project_id, command=command, timeout=timeout, on_wait=on_wait)
        try:
            yield held
        finally:
            self.release(held)


class History(Protocol):
    """The drift episodes per (project, asset); see :mod:`reconciler.engine.history`."""

    def open_episodes(
        self, project_id: str, asset_ids: Iterable[str] | None = None
    ) -> dict[str, Episode]:
        """The open episode of each asset that has one (of ``asset_ids``, or all)."""
        ...

    def episodes(self, project_id: str, asset_id: str) -> list[Episode]:
        """Every episode of one asset, oldest first."""
        ...

    def record_cycle(
        self, project_id: str, observations: Sequence[Observation], now: str
    ) -> CycleChanges:
        """Record what one cycle saw of every managed asset of ``project_id``, atomically."""
        ...

    def resolve(self, project_id: str, asset_id: str, how: Resolution, now: str) -> Episode | None:
        """Close the asset's open episode (if any) as resolved ``how``; returns it closed."""
        ...

    def all_episodes(self) -> Iterator[Episode]:
        """Every episode, oldest first: ``state migrate`` copies them."""
        ...

    def import_episode(self, episode: Episode) -> bool:
        """Store a copied episode unless an equal one is there, or it is open and the asset
        already has an open episode (the one here is newer); True when it was added."""
        ...


class StateStore(Protocol):
    """One backend's connection to the state, holding the three kinds of memory."""

    @property
    def location(self) -> str:
        """Where the state lives, for messages: a path, or a URL without its password."""
        ...

    @property
    def records(self) -> WriteOnlyRecords: ...

    @property
    def locks(self) -> Locks: ...

    @property
    def history(self) -> History: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...
