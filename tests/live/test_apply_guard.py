"""A run's write lock checked before every PUT: once it is no longer the run's, nothing more goes
out, and the result says why (the database went away, or ``state unlock`` removed it)."""

from __future__ import annotations

import logging

import pytest

from reconciler.engine.apply import Outcome
from reconciler.engine.plan import Plan
from reconciler.live.apply import apply_plan
from reconciler.render.apply_text import result_line, summary
from reconciler.state import LockLost

from .test_apply import FakeService, planned, row


class Guard:
    """Passes ``allowed`` times, then raises as a lost lock does."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls > self.allowed:
            raise LockLost("the lock of project p is no longer this run's")


def five() -> tuple[FakeService, Plan]:
    service = FakeService({f"a{i}": {} for i in range(5)})
    plan = Plan([row(f"a{i}", {"asset_order": i}) for i in range(5)], project_id="p")
    return service, planned(plan, service)


async def test_every_put_goes_out_while_the_lock_holds() -> None:
    service, plan = five()
    guard = Guard(allowed=5)
    result = await apply_plan(plan, service, parallelism=1, guard=guard)
    assert [sent[0] for sent in service.sent] == [f"a{i}" for i in range(5)]
    assert guard.calls == 5  # once per PUT, right before it
    assert result.halted is None and result.exit_code == 0


async def test_a_lost_lock_stops_the_run_before_its_next_write(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service, plan = five()
    guard = Guard(allowed=2)
    with caplog.at_level(logging.ERROR, logger="reconciler.live.apply"):
        result = await apply_plan(plan, service, parallelism=1, guard=guard)
    assert [sent[0] for sent in service.sent] == ["a0", "a1"]
    assert guard.calls == 3  # asked once more, then never again
    why = "the lock of project p is no longer this run's"
    assert [r.outcome for r in result.results] == [
        Outcome.UPDATED,
        Outcome.UPDATED,
        Outcome.NOT_SENT,
        Outcome.NOT_STARTED,
        Outcome.NOT_STARTED,
    ]
    assert result.results[2].halted == why and result.halted == why
    assert not result.interrupted and result.exit_code == 1
    assert result_line(result.results[2]) == f"a2: not sent (n-a2): the run stopped writing: {why}"
    assert summary(result) == (
        f"Apply stopped ({why}): 2 changed, 0 failed, 1 not sent, 2 not started."
    )
    assert [r.getMessage() for r in caplog.records] == [f"stopped writing: {why}"]


async def test_with_several_writers_nothing_goes_out_after_the_loss() -> None:
    service, plan = five()
    guard = Guard(allowed=0)
    result = await apply_plan(plan, service, parallelism=3, guard=guard)
    assert service.sent == []
    assert guard.calls == 1
    # The three writes under way each stop before their PUT; the other two never start.
    assert result.count(Outcome.NOT_SENT) == 3 and result.count(Outcome.NOT_STARTED) == 2
