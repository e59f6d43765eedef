"""Client-side pacing so that a run stays under the service's per-tenant rate limits.

One token bucket per API, shared by every concurrent task of a target's clients in a run. A
bucket holds at most ``burst`` tokens and starts full; once it is empty, requests leave evenly
spaced at ``1/rate`` seconds. "N requests per second" as the API gateway enforces it is a bucket
of N tokens that starts full, so the read APIs (list, show) get a burst of one token less than
the per-second rate: a plan gets nearly all of the initial burst the service allows (100 list
requests at 20/s take about 4 s, not 5 s), and the spare token absorbs requests that reach the
service a little closer together than they were granted (connection set-up delays the first
ones). Updates stay evenly spaced (burst 1): an apply is long anyway, and one that is
interrupted has then sent as few changes as possible.

The configured rate is a ceiling, not a promise: the tenant's real quota may be lower (other
clients share it, or it is not the published one). So the rate adapts (AIMD, as TCP does):

- A 429 pauses the whole bucket for the back-off (so that the other tasks do not keep hitting
  the limit while one of them waits) and lowers the rate: to the limit the service states in its
  answer (``...ratelimit,limit:5,time:1 second``) when that is lower, else by half, never below
  :data:`MIN_RATE` (1 request per second, or the configured rate if lower). The 429s of requests
  that were already in flight when the first one came are one event, not several: while the
  bucket is paused, a 429 only extends the pause.
- Every success raises the rate again by :data:`RECOVERY` of the configured rate per second of
  requests, up to the configured rate, or up to the limit the service stated.
- A request that was throttled and tries again keeps its place: it waits in a lane served before
  requests that were never throttled, and the tokens after a pause are held for it briefly, so
  no request ends up last in every burst and throttled on every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable

from reconciler.api.config import RateLimits

APIS = ("list", "show", "update")
BURST_APIS = frozenset({"list", "show"})  # reads: a plan's wall time is their paced fetch
MIN_RATE = 1.0  # requests/s: the lowest a 429 takes a bucket (or its configured rate if lower)
DECREASE = 0.5  # a 429 with no lower stated limit halves the rate
RECOVERY = 0.05  # of the configured rate, regained per second of successful requests
# How long after a pause the tokens wait for the throttled requests to come back before fresh
# requests may take them (a write re-reads its asset before it tries again).
RETRY_HOLD = 1.0


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
        self.configured = rate_per_s  # the ceiling, from the target's rate_limits
        self.rate = rate_per_s  # the rate requests go at now
        self.burst = burst  # at the configured rate; a lowered rate gets a smaller burst
        self.stated_limit: float | None = None  # what the service said in its last 429
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._paused_until = 0.0
        self._claims = 0  # throttled requests expected back for the tokens after the pause
        self._claims_until = 0.0
        # The bucket outlives an event loop (a plan and then its apply, each in its own loop);
        # the queues and wake-ups that order waiters belong to the loop they were made in.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry_lane: deque[object] = deque()
        self._fresh_lane: deque[object] = deque()
        self._wakeups: list[asyncio.Future[None]] = []

    @property
    def ceiling(self) -> float:
        """The most the rate may go back up to: configured, or lower if the service said so."""
        if self.stated_limit is None:
            return self.configured
        return min(self.configured, self.stated_limit)

    @property
    def floor(self) -> float:
        """The lowest a 429 takes the rate: :data:`MIN_RATE`, or the ceiling if lower."""
        return min(self.ceiling, MIN_RATE)

    def _burst_now(self) -> float:
        """The burst scaled to the current rate (19 at 20/s is 9 at 10/s), at least 1."""
        return float(max(1, math.floor(self.burst * self.rate / self.configured + 1e-9)))

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # the old loop's waiters are gone with it
            self._loop = loop
            self._retry_lane, self._fresh_lane, self._wakeups = deque(), deque(), []
        return loop

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self._burst_now(), self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def _head(self) -> object | None:
        if self._retry_lane:
            return self._retry_lane[0]
        return self._fresh_lane[0] if self._fresh_lane else None

    def _wait(self, now: float, retry: bool) -> float:
        """Seconds until the head waiter may go (0: now)."""
        if now < self._paused_until:
            return self._paused_until - now
        self._refill(now)
        if self._tokens < 1 - 1e-9:  # tolerate float rounding of elapsed time
            return (1 - self._tokens) / self.rate
        if not retry and self._claims and now < self._claims_until:
            # a throttled request will be back for this token: look again a token later
            return min(self._claims_until - now, 1 / self.rate)
        return 0.0

    def _wake(self) -> None:
        for waiter in self._wakeups:
            if not waiter.done():
                waiter.set_result(None)
        self._wakeups.clear()

    async def acquire(self, retry: bool = False) -> None:
        """Wait until a request may be sent: throttled requests trying again (``retry``) first,
        then the others, each first come, first served."""
        if self.configured == 0:
            return
        loop = self._bind_loop()
        if retry and self._claims:
            self._claims -= 1
        ticket = object()
        lane = self._retry_lane if retry else self._fresh_lane
        lane.append(ticket)
        try:
            while True:
                if self._head() is not ticket:
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._wakeups.append(waiter)
                    await waiter
                    continue
                wait = self._wait(self._clock(), retry)
                if wait <= 0:
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                await self._sleep(wait)
        finally:
            with contextlib.suppress(ValueError):
                lane.remove(ticket)
            self._wake()

    def pause(self, seconds: float) -> None:
        """Let no request through for ``seconds`` (the service asked us to back off)."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0.0
        self._updated = max(self._updated, self._paused_until)

    def throttled(self, wait: float, limit: float | None = None) -> None:
        """A 429: pause for ``wait`` seconds and lower the rate (once per pause), to ``limit``
        (the service's stated per-second limit) if that is lower, else by half. Tokens refill
        at the new rate during the pause, as the service's own bucket does."""
        now = self._clock()
        if limit is not None and math.isfinite(limit) and limit > 0:
            self.stated_limit = limit
        if self.configured == 0:
            return
        if now >= self._paused_until:  # the first 429 of this episode
            if self.stated_limit is not None and self.stated_limit < self.rate:
                self.rate = self.stated_limit
            else:
                self.rate = max(self.floor, self.rate * DECREASE)
        self._paused_until = max(self._paused_until, now + wait)
        self._tokens, self._updated = 0.0, now
        self._claims += 1
        self._claims_until = self._paused_until + RETRY_HOLD

    def succeeded(self) -> None:
        """An answer below 400: win back a little of the rate (additive increase)."""
        now = self._clock()
        if self.configured == 0 or now < self._paused_until or self.rate >= self.ceiling:
            return  # in-flight answers of a paused bucket say nothing about the new rate
        self._refill(now)  # the tokens earned so far, at the old rate
        self.rate = min(self.ceiling, self.rate + RECOVERY * self.configured / self.rate)


def default_burst(rate_per_s: float, api: str = "list") -> int:
    """The pacer's burst for ``api``: the service's burst minus one spare token, for reads."""
    if api not in BURST_APIS:
        return 1
    return max(1, int(rate_per_s) - 1)


_STATED_LIMIT = re.compile(
    r"limit\s*:\s*(\d+(?:\.\d+)?)\s*,\s*time\s*:\s*(\d+(?:\.\d+)?)\s*"
    r"(second|sec|s|minute|min|m|hour|h|day|d)s?\b",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNIT_SECONDS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def service_limit(error_msg: str) -> float | None:
    """The per-second limit a 429 message states (the API gateway's ``...policy user over
    ratelimit,limit:10,time:1 second``), or None when it states none."""
    found = _STATED_LIMIT.search(error_msg or "")
    if found is None:
        return None
    count, span = float(found.group(1)), float(found.group(2))
    seconds = span * _UNIT_SECONDS[found.group(3).lower()]
    if count <= 0 or seconds <= 0:
        return None
    return count / seconds


class Pacer:
    """The rate limiters of one client, one per API.

    ``burst`` overrides :func:`default_burst` for every API (``1`` spaces every request evenly).
    """

    def __init__(
        self,
        limits: RateLimits,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limiters = {
            api: RateLimiter(
                limits.for_api(api),
                burst if burst is not None else default_burst(limits.for_api(api), api),
                clock=clock,
                sleep=sleep,
            )
            for api in APIS
        }

    async def acquire(self, api: str, *, retry: bool = False) -> None:
        """Wait for ``api``'s turn; ``retry``: a throttled request trying again, served first."""
        await self.limiters[api].acquire(retry)

    def pause(self, api: str, seconds: float) -> None:
        self.limiters[api].pause(seconds)

    def throttled(self, api: str, wait: float, limit: float | None = None) -> None:
        """The service answered 429 for ``api``: back off for ``wait`` seconds and slow down
        (``limit``: the per-second limit its message stated, see :func:`service_limit`)."""
        self.limiters[api].throttled(wait, limit)

    def succeeded(self, api: str) -> None:
        """The service accepted a request for ``api`` (answer below 400): speed up a little."""
        self.limiters[api].succeeded()
