"""Two ``reconciler watch --self-heal`` replicas on one PostgreSQL state, as real processes.

Each test starts the emulator, the suite's PostgreSQL server (a fresh database per test,
``tests/pg_server.py``) and two ``python -m reconciler watch`` processes given nothing in common
but the state's URL (``RECONCILER_STATE``); then it watches their roles (``/healthz``, the
``reconciler_watch_leader`` gauge, the logs), kills or unseats the leader, edits the live project
behind their backs and counts the heal PUTs in the emulator's request log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.emulator.testing import EmulatorFactory, RunningEmulator
from reconciler.state import Resolution
from reconciler.state.postgres import PostgresStore
from tests.e2e.test_watch import A0, A1, A2, Runner, Watch, project, puts, until

pytestmark = pytest.mark.e2e

POLL = 0.5  # --leader-poll of every replica here
# A killed leader's session ends with its connection, so a standby claims the leadership at its
# next poll (docs/watch.md); the slack is for a loaded test machine.
TAKEOVER_BOUND = POLL + 2.5


def role(watch: Watch, client: httpx.Client | None = None) -> str | None:
    """The replica's role for the default target, per its /healthz; None when it is down."""
    try:
        answer = (client or httpx).get(watch.url("/healthz"), timeout=2)
        roles = answer.json().get("roles", {})
    except (httpx.HTTPError, ValueError):
        return None
    value = roles.get("default")
    return str(value) if value is not None else None


def gauge(watch: Watch) -> float | None:
    return watch.metric("reconciler_watch_leader", target="default")


@dataclass
class Fleet:
    emu: RunningEmulator
    runner: Runner
    url: str
    replicas: tuple[Watch, Watch]

    def split(self) -> tuple[Watch, Watch]:
        """(leader, standby) once the replicas agree, each by /healthz and the gauge."""

        def settled() -> tuple[Watch, Watch] | None:
            first, second = self.replicas
            roles = (role(first), role(second))
            if roles == ("leader", "standby"):
                pair = (first, second)
            elif roles == ("standby", "leader"):
                pair = (second, first)
            else:
                return None
            return pair if (gauge(pair[0]), gauge(pair[1])) == (1, 0) else None

        return until(settled, 20, "one leader and one standby")

    def heal_puts(self, asset: str) -> int:
        return len(puts(self.emu, asset))


@pytest.fixture
def fleet(tmp_path: Path, emulator: EmulatorFactory, stack: ExitStack, postgres_url: str) -> Fleet:
    emu, runner = project(tmp_path, emulator, stack, 3)
    runner.env["RECONCILER_STATE"] = postgres_url
    args = ("--interval", "500ms", "--self-heal", "--leader-poll", f"{POLL}s")
    replicas = (runner.watch(*args), runner.watch(*args))
    return Fleet(emu, runner, postgres_url, replicas)


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


class RoleSampler:
    """Polls both replicas' /healthz on a thread, to catch a moment with two leaders."""

    def __init__(self, replicas: tuple[Watch, Watch]) -> None:
        self.replicas = replicas
        self.samples: list[tuple[str | None, str | None]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        first, second = self.replicas
        with httpx.Client() as client:
            while not self._done.is_set():
                self.samples.append((role(first, client), role(second, client)))
                time.sleep(0.01)

    def __enter__(self) -> RoleSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)


def test_two_replicas_elect_one_leader_which_alone_heals_and_records(fleet: Fleet) -> None:
    emu = fleet.emu
    leader, standby = fleet.split()
    assert all(w.health() == 200 for w in (leader, standby))  # a standby is healthy too
    assert leader.events("leader-elected") and not standby.events("leader-elected")
    (seen,) = standby.events("standby")
    assert f"pid {leader.proc.pid} " in seen["leader"]

    emu.clear_requests()
    emu.store.patch(A2, {"asset_description": "Changed by hand"})
    until(
        lambda: emu.store.get(A2)["asset_description"] == "Clip number 2",  # type: ignore[index]
        10,
        "the heal",
    )
    time.sleep(1.5)  # three more cycles of each replica
    assert [e.get("body") for e in puts(emu, A2)] == [{"asset_description": "Clip number 2"}]
    assert leader.metric("reconciler_self_heal_total", result="healed") == 1
    assert standby.metric("reconciler_self_heal_total", result="healed") == 0
    assert (standby.metric("reconciler_cycles_total", result="success") or 0) >= 3
    assert standby.metric("reconciler_assets_managed", target="default") == 3
    assert not standby.events("healed") and not standby.events("drift-opened")

    # The leadership is a lock of its own, listed with the others, blocking no apply.
    listing = fleet.runner.run("state", "locks")
    assert listing.returncode == 0, listing.stderr
    assert f"{emu.base_url.rstrip('/')}#watch-leader" in listing.stdout
    assert str(leader.proc.pid) in listing.stdout
    assert leader.stop() == 0 and standby.stop() == 0
    with PostgresStore(fleet.url) as store:
        (episode,) = store.history.episodes(emu.project_id, A2)
    assert episode.resolution is Resolution.SELF_HEAL  # recorded once, by the leader


def test_the_standby_takes_over_when_the_leader_is_killed_and_nothing_is_healed_twice(
    fleet: Fleet,
) -> None:
    emu = fleet.emu
    with RoleSampler(fleet.replicas) as sampler:
        leader, standby = fleet.split()
        emu.store.patch(A0, {"asset_name": "Edited"})
        until(lambda: emu.store.get(A0)["asset_name"] == "Clip 0", 10, "the heal")  # type: ignore[index]
        time.sleep(1)

        leader.proc.kill()  # SIGKILL: no goodbye, the lock's session just ends
        killed = time.monotonic()
        until(lambda: role(standby) == "leader", 10, "the takeover", step=0.02)
        took = time.monotonic() - killed
        until(lambda: gauge(standby) == 1, 5, "the gauge")

        emu.store.patch(A1, {"asset_name": "Edited too"})
        until(lambda: emu.store.get(A1)["asset_name"] == "Clip 1", 10, "the heal")  # type: ignore[index]
        time.sleep(1.5)
    assert took < TAKEOVER_BOUND, f"took {took:.2f}s"
    assert (fleet.heal_puts(A0), fleet.heal_puts(A1), fleet.heal_puts(A2)) == (1, 1, 0)
    assert [e["asset_id"] for e in standby.events("healed")] == [A1]
    assert standby.events("leader-elected")
    seen = set(sampler.samples)
    assert {("leader", "standby"), (None, "leader")} <= seen or {
        ("standby", "leader"),
        ("leader", None),
    } <= seen, seen
    assert ("leader", "leader") not in seen
    assert standby.stop() == 0


def test_a_leader_whose_lease_is_removed_steps_down_and_the_standby_takes_over(
    fleet: Fleet,
) -> None:
    emu = fleet.emu
    leader, standby = fleet.split()
    endpoint = emu.base_url.rstrip("/")

    removed = fleet.runner.run("state", "unlock", f"{endpoint}#watch-leader", "--force")
    assert removed.returncode == 0, removed.stderr
    until(lambda: leader.events("leader-lost"), 10, "the leader to step down")
    until(lambda: role(standby) == "leader" and gauge(standby) == 1, 10, "the takeover")
    until(lambda: role(leader) == "standby" and gauge(leader) == 0, 10, "the old leader's role")
    (lost,) = leader.events("leader-lost")
    assert "lock" in lost["reason"] and "nothing more is sent" in lost["reason"]

    emu.store.patch(A1, {"asset_name": "Edited"})
    until(lambda: emu.store.get(A1)["asset_name"] == "Clip 1", 10, "the heal")  # type: ignore[index]
    time.sleep(1.5)
    assert fleet.heal_puts(A1) == 1
    assert [e["asset_id"] for e in standby.events("healed")] == [A1]
    assert not leader.events("healed")
    assert role(leader) == "standby"  # it did not take the leadership back
    assert leader.stop() == 0 and standby.stop() == 0
