"""Client-side pacing so that a run stays under the service's per-tenant rate limits.

One token bucket per API, shared by every concurrent task of a target's clients in a run. A
bucket holds at most ``burst`` tokens and starts full; once it is empty, requests leave evenly
spaced at ``1/rate`` seconds. "N requests per second" as the API gateway enforces it is a bucket
of N tokens that starts full, so the read APIs (list, show) get a burst of one token less than
the per-second rate: a plan gets nearly all of the initial burst the service allows (100 list
requests at 20/s take about 4 s, not 5 s), and the spare token absorbs requests that reach the
service a little closer together than they were granted (connection set-up delays the first
ones). Updates stay evenly spaced (burst 1): an apply is long anyway, and one that is
interrupted has then sent as few changes as possible. A 429 pauses the whole bucket, so that the
other tasks do not keep hitting the limit while one of them backs off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from reconciler.api.config import RateLimits

APIS = ("list", "show", "update")
BURST_APIS = frozenset({"list", "show"})  # reads: a plan's wall time is their paced fetch


class RateLimiter:
    """An asyncio token bucket: ``await acquire()`` before each request."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_s < 0 or burst < 1:
            raise ValueError("rate must be >= 0 and burst >= 1")
        self.rate = rate_per_s
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._paused_until = 0.0
        # The bucket outlives an event loop (a plan and then its apply, each in its own loop);
        # the lock that orders waiters belongs to the loop it was made in.
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _waiters(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self) -> None:
        """Wait until a request may be sent; waiters are served first come, first served."""
        if self.rate == 0:
            return
        async with self._waiters():
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                self._refill(now)
                if self._tokens >= 1 - 1e-9:  # tolerate float rounding of elapsed time
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                await self._sleep((1 - self._tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        """Let no request through for ``seconds`` (the service asked us to back off)."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0.0
        self._updated = max(self._updated, self._paused_until)


def default_burst(rate_per_s: float, api: str = "list") -> int:
    """The pacer's burst for ``api``: the service's burst minus one spare token, for reads."""
    if api not in BURST_APIS:
        return 1
    return max(1, int(rate_per_s) - 1)


class Pacer:
    """The rate limiters of one client, one per API.

    ``burst`` overrides :func:`default_burst` for every API (``1`` spaces every request evenly).
    """

    def __init__(self, limits: RateLimits, burst: int | None = None) -> None:
        self.limiters = {
            api: RateLimiter(
                limits.for_api(api),
                burst if burst is not None else default_burst(limits.for_api(api), api),
            )
            for api in APIS
        }

    async def acquire(self, api: str) -> None:
        await self.limiters[api].acquire()

    def pause(self, api: str, seconds: float) -> None:
        self.limiters[api].pause(seconds)
