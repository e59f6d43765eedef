"""The pacer adapts to the limit the service really applies and never starves a request.

Every test runs on an event loop whose clock is virtual: time moves only when every task waits,
straight to the next timer, so concurrent requests overlap as they would for real and a minute
of requests takes no time.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from reconciler.api.config import RateLimits
from reconciler.api.pacing import Pacer, RateLimiter, service_limit
from reconciler.api.retries import RetryTally
from reconciler.render.retry_text import retry_lines

T = TypeVar("T")
LATENCY = 0.03


class _VirtualSelector(selectors.SelectSelector):
    """Waiting for I/O moves the virtual clock by the loop's timeout instead of waiting."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("every task waits on something that never comes")
        self._loop.now += timeout
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 100.0
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        return self.now


def run(main: Callable[[VirtualClockLoop], Coroutine[Any, Any, T]]) -> T:
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.close()


class ServiceBucket:
    """The API gateway's throttling as the emulator does it: ``rate`` tokens, refilled at
    ``rate`` per second; a request without a token gets a 429 with ``Retry-After`` in whole
    seconds and the limit in its message."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate, self.clock = rate, clock
        self.tokens, self.updated = rate, clock()
        self.throttled = 0

    def take(self) -> float | None:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        self.throttled += 1
        return float(max(1, math.ceil((1 - self.tokens) / self.rate)))


def pacer_on(loop: VirtualClockLoop, limits: RateLimits) -> Pacer:
    return Pacer(limits, clock=loop.time, sleep=asyncio.sleep)


async def send_all(
    loop: VirtualClockLoop,
    pacer: Pacer,
    service: ServiceBucket,
    api: str,
    count: int,
    parallelism: int,
    tally: RetryTally | None = None,
) -> list[int]:
    """``count`` requests, ``parallelism`` at a time, each tried until the service takes it,
    as the client does: a 429 is waited out and tried again in the retry lane. Returns the
    attempts each request took."""
    slots = asyncio.Semaphore(parallelism)
    message = f"policy user over ratelimit,limit:{service.rate:g},time:1 second"

    async def one() -> int:
        async with slots:
            attempts, retry = 0, False
            while True:
                await pacer.acquire(api, retry=retry)
                attempts += 1
                await asyncio.sleep(LATENCY)
                wait = service.take()
                if wait is None:
                    pacer.succeeded(api)
                    return attempts
                limit = service_limit(message)
                pacer.throttled(api, wait, limit)
                if tally is not None:
                    tally.throttle(wait, limit=limit, api=api)
                await asyncio.sleep(wait)
                retry = True

    return list(await asyncio.gather(*(one() for _ in range(count))))


def test_an_apply_against_half_the_configured_quota_lands_every_change_near_the_real_floor() -> (
    None
):
    """200 PUTs, configured 10/s, the service takes 5/s: every one lands, none is throttled
    twice, and the run takes at most 1.15x what 5/s allows (40 s)."""

    async def main(loop: VirtualClockLoop) -> tuple[list[int], float, int]:
        pacer = pacer_on(loop, RateLimits(list=20, show=20, update=10))
        service = ServiceBucket(5, loop.time)
        started = loop.time()
        attempts = await send_all(loop, pacer, service, "update", 200, parallelism=10)
        return attempts, loop.time() - started, service.throttled

    attempts, wall, throttled = run(main)
    assert len(attempts) == 200 and max(attempts) <= 2
    assert wall <= 1.15 * 200 / 5
    assert throttled <= 3


def test_a_plan_against_half_the_configured_quota_stays_within_a_tenth_of_the_real_floor() -> None:
    """100 list pages, configured 20/s (burst 19), the service takes 10/s: at most 1.1x 10 s."""

    async def main(loop: VirtualClockLoop) -> tuple[float, int]:
        pacer = pacer_on(loop, RateLimits(list=20, show=20, update=10))
        service = ServiceBucket(10, loop.time)
        started = loop.time()
        await send_all(loop, pacer, service, "list", 100, parallelism=8)
        return loop.time() - started, service.throttled

    wall, throttled = run(main)
    assert wall <= 1.1 * 100 / 10
    assert throttled <= 10


def test_a_429_halves_the_rate_once_for_the_requests_that_were_in_flight() -> None:
    async def main(loop: VirtualClockLoop) -> list[float]:
        limiter = RateLimiter(8, clock=loop.time)
        rates = []
        limiter.throttled(1.0)  # the first 429 of a burst
        rates.append(limiter.rate)
        loop.now += LATENCY
        limiter.throttled(1.0)  # another request of the same burst, answered a little later
        rates.append(limiter.rate)
        loop.now += 2.0
        limiter.throttled(1.0)  # a request sent at the new rate: still too fast
        rates.append(limiter.rate)
        for _ in range(10):
            limiter.throttled(1.0)
            loop.now += 2.0
        rates.append(limiter.rate)
        return rates

    assert run(main) == [4.0, 4.0, 2.0, 1.0]  # never below 1 request per second


def test_a_stated_limit_lower_than_the_rate_is_gone_to_directly_and_is_the_new_ceiling() -> None:
    async def main(loop: VirtualClockLoop) -> tuple[float, float]:
        limiter = RateLimiter(20, burst=19, clock=loop.time)
        limiter.throttled(1.0, limit=6)
        after_429 = limiter.rate
        loop.now += 1.0
        for _ in range(500):
            limiter.succeeded()
            loop.now += 0.2
        return after_429, limiter.rate

    assert run(main) == (6.0, 6.0)


def test_successes_raise_the_rate_additively_up_to_the_configured_one() -> None:
    async def main(loop: VirtualClockLoop) -> list[float]:
        limiter = RateLimiter(10, clock=loop.time)
        limiter.throttled(1.0)  # 10 -> 5
        loop.now += 1.0
        seen = [limiter.rate]
        for _ in range(10):  # ten successes at 5/s: two seconds of requests
            limiter.succeeded()
            loop.now += 0.2
        seen.append(limiter.rate)
        for _ in range(1000):
            limiter.succeeded()
            loop.now += 0.1
        seen.append(limiter.rate)
        return seen

    start, after_two_seconds, at_last = run(main)
    assert start == 5.0
    # 5% of the configured 10/s per second of requests: about +1/s over two seconds
    assert after_two_seconds == pytest.approx(6.0, abs=0.1)
    assert at_last == 10.0


def test_answers_of_a_paused_bucket_do_not_raise_its_rate() -> None:
    async def main(loop: VirtualClockLoop) -> float:
        limiter = RateLimiter(10, clock=loop.time)
        limiter.throttled(2.0)
        for _ in range(20):  # requests sent before the 429, answered during the pause
            limiter.succeeded()
        return limiter.rate

    assert run(main) == 5.0


def test_a_throttled_request_goes_first_when_the_pause_ends() -> None:
    """Five fresh requests queue during the pause; the throttled one, back after its wait,
    is served before all of them."""

    async def main(loop: VirtualClockLoop) -> list[str]:
        limiter = RateLimiter(10, clock=loop.time)
        order: list[str] = []
        await limiter.acquire()
        limiter.throttled(1.0)

        async def fresh(name: str) -> None:
            await limiter.acquire()
            order.append(name)

        async def throttled() -> None:
            await asyncio.sleep(1.0 + LATENCY)  # its back-off, then a little later still
            await limiter.acquire(retry=True)
            order.append("retry")

        await asyncio.gather(*(fresh(f"fresh {i}") for i in range(5)), throttled())
        return order

    assert run(main) == ["retry", "fresh 0", "fresh 1", "fresh 2", "fresh 3", "fresh 4"]


def test_a_retry_already_waiting_overtakes_every_fresh_request() -> None:
    async def main(loop: VirtualClockLoop) -> list[tuple[str, float]]:
        limiter = RateLimiter(4, clock=loop.time)
        grants: list[tuple[str, float]] = []

        async def one(name: str, retry: bool, delay: float) -> None:
            await asyncio.sleep(delay)
            await limiter.acquire(retry=retry)
            grants.append((name, loop.time() - 100.0))

        await asyncio.gather(
            *(one(f"fresh {i}", False, 0.0) for i in range(4)), one("retry", True, 0.1)
        )
        return grants

    grants = run(main)
    assert [name for name, _ in grants] == ["fresh 0", "retry", "fresh 1", "fresh 2", "fresh 3"]
    assert [at for _, at in grants] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])


def test_tokens_held_for_a_throttled_request_go_to_others_if_it_never_comes_back() -> None:
    async def main(loop: VirtualClockLoop) -> float:
        limiter = RateLimiter(10, clock=loop.time)
        await limiter.acquire()
        limiter.throttled(1.0)  # and that request gives up
        await limiter.acquire()
        return loop.time() - 100.0

    assert 1.0 <= run(main) <= 2.0 + 1e-6


def test_after_a_pause_a_read_bucket_has_the_burst_of_its_new_rate() -> None:
    """The service's bucket refills during the back-off: at 10/s a one-second pause is worth
    9 requests at once (the burst of 10/s, one spare), not 1 and not the configured 19."""

    async def main(loop: VirtualClockLoop) -> list[float]:
        limiter = RateLimiter(20, burst=19, clock=loop.time)
        limiter.throttled(1.0, limit=10)
        grants = []
        for i in range(12):
            await limiter.acquire(retry=i == 0)  # the throttled request first, then others
            grants.append(round(loop.time() - 100.0, 6))
        return grants

    assert run(main) == pytest.approx([1.0] * 9 + [1.1, 1.2, 1.3])


def test_the_pacer_keeps_working_in_a_second_event_loop() -> None:
    limiter = RateLimiter(10)
    limiter.throttled(0.0)

    async def queue(count: int) -> None:
        await asyncio.gather(
            *(limiter.acquire(retry=i % 2 == 0) for i in range(count)), limiter.acquire()
        )

    asyncio.run(queue(3))
    asyncio.run(queue(3))  # a plan's loop, then its apply's: no waiter of the first loop left


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        (
            "The throttling threshold has been reached: policy user over ratelimit,"
            "limit:10,time:1 second",
            10.0,
        ),
        ("policy user over ratelimit,limit:5,time:1 second", 5.0),
        ("policy ip over ratelimit, limit: 600, time: 1 minute", 10.0),
        ("policy user over ratelimit,limit:2.5,time:1 second", 2.5),
        ("The throttling threshold has been reached", None),
        ("over ratelimit,limit:XX,time:1 second", None),
        ("limit:0,time:1 second", None),
        ("", None),
    ],
)
def test_the_limit_a_429_states_is_read_per_second(message: str, limit: float | None) -> None:
    assert service_limit(message) == limit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_waits_count_once_as_time_lost() -> None:
    """Ten requests throttled together, each waiting 2 s, lose 2 s, not 20; a later, separate
    pause adds its own length; overlapping pauses count from the first start to the last end."""
    clock = Clock()
    tally = RetryTally(clock=clock)
    for _ in range(10):
        tally.throttle(2.0, limit=5, api="update")
        clock.now += 0.01
    clock.now = 10.0
    tally.throttle(1.0, limit=5, api="update")
    clock.now = 10.5
    tally.throttle(1.0, limit=5, api="update")  # overlaps: the window now ends at 11.5
    clock.now = 20.0
    assert tally.throttled == 12
    assert tally.throttle_lost == pytest.approx(2.09 + 1.5)
    assert tally.throttle_wait == pytest.approx(22.0)  # the sum, as the old warning said


def test_a_window_still_open_counts_only_up_to_now() -> None:
    clock = Clock()
    tally = RetryTally(clock=clock)
    tally.throttle(30.0)  # positional, as before
    clock.now = 4.0  # the run stopped at its deadline
    assert tally.throttle_lost == pytest.approx(4.0)


def test_the_warning_names_the_stated_limits_and_the_time_really_lost() -> None:
    clock = Clock()
    tally = RetryTally(clock=clock)
    for _ in range(13):
        tally.throttle(1.0, limit=5, api="update")
    tally.throttle(1.0, limit=10, api="list")
    clock.now = 1.0
    for _ in range(6):
        tally.throttle(1.0, limit=5, api="update")
        clock.now += 1.5
    assert retry_lines(tally) == [
        "throttled 20 times by MetaStudio (HTTP 429, list limit 10/s, update limit 5/s); "
        "about 7.0 s lost; requests now go at the limit the service applies"
    ]


def test_the_warning_without_a_stated_limit_says_the_requests_were_slowed() -> None:
    clock = Clock()
    tally = RetryTally(clock=clock)
    tally.throttle(2.5, api="show")
    clock.now = 3.0
    assert retry_lines(tally) == [
        "throttled 1 time by MetaStudio (HTTP 429); about 2.5 s lost; requests were slowed "
        "until the service accepted them"
    ]
