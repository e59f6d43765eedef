"""Token buckets per API, on a controlled clock: burst, refill, wait hints, unlimited APIs."""

from __future__ import annotations

import pytest

from reconciler.emulator.ratelimit import RateLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_a_burst_of_rate_requests_then_says_how_long_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter({"update": 5}, clock=clock)
    assert [limiter.acquire("update") for _ in range(5)] == [None] * 5
    wait = limiter.acquire("update")
    assert wait == pytest.approx(0.2)


def test_tokens_come_back_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter({"list": 2}, clock=clock)
    limiter.acquire("list")
    limiter.acquire("list")
    assert limiter.acquire("list") is not None
    clock.now += 0.5  # one token at 2/s
    assert limiter.acquire("list") is None
    assert limiter.acquire("list") is not None


def test_apis_have_separate_buckets_and_zero_means_unlimited() -> None:
    limiter = RateLimiter({"update": 1, "list": 0}, clock=Clock())
    assert limiter.acquire("update") is None
    assert limiter.acquire("update") is not None
    assert all(limiter.acquire("list") is None for _ in range(1000))
    assert limiter.acquire("show") is None  # not limited at all
    assert limiter.limit_of("list") is None and limiter.limit_of("update") == 1


def test_new_limits_start_with_full_buckets() -> None:
    limiter = RateLimiter({"update": 1}, clock=Clock())
    limiter.acquire("update")
    limiter.set_limits({"update": 3})
    assert [limiter.acquire("update") for _ in range(3)] == [None] * 3


def test_a_rate_below_one_per_second_still_allows_one_request() -> None:
    limiter = RateLimiter({"update": 0.5}, clock=Clock())
    assert limiter.acquire("update") is None
    assert limiter.acquire("update") == pytest.approx(2.0)


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after_header(w) for w in (0.01, 1.0, 1.2, 7.9)] == ["1", "1", "2", "8"]
