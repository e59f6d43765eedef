"""The write locks a run holds: one per (endpoint, project), taken before planning what to send.

Every writer (``apply``; ``watch --self-heal``) takes its projects' locks before it plans, and
holds them to its last write.  Several projects are always taken in one order, so that two runs
never wait on each other's second lock.  The locks live in the state store
(:mod:`reconciler.state`): a local file by default, a shared database for a fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence

from reconciler.run.session import Session
from reconciler.state import LockHeld, LockHolder, Locks
from reconciler.state.base import POLL_SECONDS, HeldLock

LockWait = Callable[[LockHolder, float], None]


def _ignore(_holder: LockHolder, _timeout: float) -> None:
    return None


class Guard:
    """A lock this run holds, that its writes check before each one is sent: a lock lost (the
    store went away, or someone removed it) stops the run before its next write."""

    def __init__(self, locks: Locks, held: HeldLock) -> None:
        self.locks = locks
        self.held = held

    def check(self) -> None:
        """Raise :class:`~reconciler.state.LockLost` unless the lock is still this run's."""
        self.locks.check(self.held)


@contextlib.contextmanager
def project_lock(
    session: Session,
    *,
    timeout: float = 0.0,
    command: str = "apply",
    on_wait: LockWait = _ignore,
) -> Iterator[Guard]:
    """Hold the write lock of the session's (endpoint, project) for a block of work.

    Raises :class:`~reconciler.state.LockHeld` naming the holder when it stays taken past
    ``timeout`` seconds.
    """
    endpoint, project_id = session.place
    with (
        session.store() as store,
        store.locks.hold(
            endpoint,
            project_id,
            command=command,
            timeout=timeout,
            on_wait=lambda holder: on_wait(holder, timeout),
        ) as held,
    ):
        yield Guard(store.locks, held)


def _by_place(sessions: Sequence[Session]) -> dict[tuple[str, str], Session]:
    """One session per distinct (endpoint, project), in lock order."""
    places: dict[tuple[str, str], Session] = {}
    for session in sessions:
        places.setdefault(session.place, session)
    return dict(sorted(places.items()))


@contextlib.contextmanager
def all_locked(
    sessions: Sequence[Session], timeout: float, on_wait: LockWait = _ignore
) -> Iterator[dict[tuple[str, str], Guard]]:
    """Every distinct project of the run locked, in one order, for a whole apply: from
    planning to the last write; each lock's guard by (endpoint, project)."""
    with contextlib.ExitStack() as stack:
        yield {
            place: stack.enter_context(project_lock(session, timeout=timeout, on_wait=on_wait))
            for place, session in _by_place(sessions).items()
        }


class StreamedLocks:
    """``apply``'s write locks in a streamed run: each target's project is locked when the
    target is learnt, before its first read, without waiting (so two runs never wait on each
    other's second lock).  When one is taken by another writer, the run stops reading,
    releases what it holds once the load is over, and waits for every lock in one order (up to
    ``--lock-timeout``) before it reads again."""

    def __init__(self, stack: contextlib.ExitStack, timeout: float, on_wait: LockWait) -> None:
        self.stack = stack
        self.timeout = timeout
        self.on_wait = on_wait
        self.guards: dict[tuple[str, str], Guard] = {}
        self.contended = False
        self.held_by: LockHolder | None = None  # the other writer last found holding one

    def take(self, session: Session) -> bool:
        """Lock the session's project now if it is free; False when another writer has it."""
        if session.place in self.guards:
            return True
        try:
            guard = self.stack.enter_context(project_lock(session, timeout=0.0))
        except LockHeld as exc:
            self.contended = True
            self.held_by = exc.holder
            return False
        self.guards[session.place] = guard
        return True

    async def wait_for_all(self, sessions: Sequence[Session]) -> None:
        """Release every lock, then take all of them in one order, each waiting up to the
        timeout; the wait is asynchronous, so Ctrl-C and SIGTERM end it at once."""
        self.stack.close()
        self.guards.clear()
        for place, session in _by_place(sessions).items():
            started = time.monotonic()
            told = False
            while not self.take(session):
                waited = time.monotonic() - started
                holder = self.held_by
                assert holder is not None
                if waited >= self.timeout:
                    raise LockHeld(*place, holder, round(waited, 1) if self.timeout else 0.0)
                if not told:
                    self.on_wait(holder, self.timeout)
                    told = True
                await asyncio.sleep(min(POLL_SECONDS, self.timeout - waited))
