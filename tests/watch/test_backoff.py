"""Per-asset exponential backoff of heal attempts."""

from __future__ import annotations

from reconciler.watch.backoff import HealBackoff


def test_each_failure_doubles_the_wait_up_to_the_cap() -> None:
    backoff = HealBackoff(base=10, cap=35)
    assert backoff.allowed("a", 0)
    assert [backoff.failed("a", 0) for _ in range(4)] == [10, 20, 35, 35]
    assert backoff.failures("a") == 4


def test_an_asset_waits_out_its_delay_and_others_are_not_held_up() -> None:
    backoff = HealBackoff(base=10, cap=100)
    backoff.failed("a", now=100)
    assert not backoff.allowed("a", 105)
    assert backoff.wait("a", 105) == 5
    assert backoff.allowed("a", 110)
    assert backoff.allowed("b", 105)


def test_success_or_the_end_of_the_drift_starts_afresh() -> None:
    backoff = HealBackoff(base=10, cap=100)
    backoff.failed("a", 0)
    backoff.failed("a", 10)
    backoff.succeeded("a")
    assert backoff.failed("a", 50) == 10
    backoff.failed("b", 0)
    backoff.forget_except({"b"})
    assert backoff.failures("a") == 0 and backoff.failures("b") == 1
