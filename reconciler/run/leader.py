"""Which ``watch`` replica is the active one for a project: leadership through the state's locks.

Several ``reconciler watch`` processes may watch one project (the replicas of a Deployment,
sharing a PostgreSQL state).  One of them per (endpoint, project), the leader, records the drift
history and heals; the others stand by: they keep reading and serving their metrics, and claim
the leadership when it is free.  The leadership is a lock of the state store on a key of its own,
the project's with ``#watch-leader`` after the endpoint: it never blocks ``apply`` (which takes
the project's write lock, as a heal does), and ``reconciler state locks`` lists it.  It ends as
any lock of that store does: with PostgreSQL when the leader's session ends (a killed leader at
once, a vanished host within the server's keepalive bound); with SQLite when the leader's process
is found dead on this host.

Everything here blocks (it talks to the store): the watch loop calls it from a worker thread,
one call at a time.  Nothing is logged here; the caller says what changed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reconciler.errors import ReconcilerError
from reconciler.state import HeldLock, LockHeld, LockHolder, LockLost, StateStore

LEADER_SUFFIX = "#watch-leader"
Place = tuple[str, str]  # (endpoint, project), as Session.place gives it


def leader_key(place: Place) -> Place:
    """The lock key of a project's watch leadership: its endpoint suffixed ``#watch-leader``."""
    endpoint, project_id = place
    return f"{endpoint.rstrip('/')}{LEADER_SUFFIX}", project_id


@dataclass(frozen=True)
class Standing:
    """This replica's role for one project after an attempt to confirm or claim it."""

    place: Place
    leader: bool
    changed: bool = False  # it became leader, or lost the leadership, in this attempt
    holder: LockHolder | None = None  # who leads, while this replica stands by (when known)
    lost: str | None = None  # why the leadership was lost, when it was in this attempt
    error: str | None = None  # the state could not be asked (the role is unchanged)


class Leadership:
    """The leaderships one watch process holds or waits for, on one store kept open for the
    process's whole life (with PostgreSQL its session is the lease).

    ``hold_off``: after losing a leadership, this replica waits that long before claiming it
    again, so that a healthy replica takes over rather than the one whose lease was taken away
    (removed by someone, or its connection to the state broke).
    """

    def __init__(
        self,
        store: StateStore,
        command: str,
        *,
        hold_off: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.command = command
        self.hold_off = hold_off
        self._clock = clock
        self._held: dict[Place, HeldLock] = {}
        self._held_off_until: dict[Place, float] = {}

    def leads(self, place: Place) -> bool:
        return place in self._held

    @property
    def held(self) -> list[Place]:
        """The projects this replica leads."""
        return list(self._held)

    def settle(self, places: Iterable[Place]) -> list[Standing]:
        """For each project: confirm the lease this replica holds (stepping down if it was
        lost), or claim the leadership without waiting when it is free."""
        return [self.confirm(p) if self.leads(p) else self.claim(p) for p in dict.fromkeys(places)]

    def confirm(self, place: Place) -> Standing:
        """Whether this replica still leads ``place``; a lost lease is given up here."""
        held = self._held.get(place)
        if held is None:
            return Standing(place, leader=False)
        try:
            self.store.locks.check(held)
        except LockLost as exc:
            self._forget(place)
            self._held_off_until[place] = self._clock() + self.hold_off
            return Standing(place, leader=False, changed=True, lost=str(exc))
        return Standing(place, leader=True)

    def claim(self, place: Place) -> Standing:
        """Take the leadership of ``place`` if nobody holds it (never waiting)."""
        if self.leads(place):
            return Standing(place, leader=True)
        if self._clock() < self._held_off_until.get(place, 0.0):
            return Standing(place, leader=False)
        endpoint, project_id = leader_key(place)
        try:
            held = self.store.locks.acquire(endpoint, project_id, command=self.command)
        except LockHeld as exc:
            return Standing(place, leader=False, holder=exc.holder)
        except ReconcilerError as exc:
            return Standing(place, leader=False, error=str(exc))
        self._held[place] = held
        self._held_off_until.pop(place, None)
        return Standing(place, leader=True, changed=True)

    def _forget(self, place: Place) -> HeldLock | None:
        return self._held.pop(place, None)

    def release(self, place: Place) -> None:
        """Give up the leadership of ``place`` (the project is no longer watched)."""
        held = self._forget(place)
        if held is not None:
            self.store.locks.release(held)

    def close(self) -> None:
        """Give every leadership back and close the store: a standby takes over at its next
        claim."""
        try:
            for place in list(self._held):
                # PostgreSQL: closing the store below ends the session, and with it the lease;
                # SQLite: the row of a process that ended is taken over.
                with contextlib.suppress(ReconcilerError):
                    self.release(place)
        finally:
            for place in list(self._held):
                self._forget(place)
            self.store.close()
