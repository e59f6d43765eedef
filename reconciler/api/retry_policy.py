"""When a failed read is tried again, and how long to wait first.

The decision is kept apart from sending (:mod:`reconciler.api.attempt`) and from the loop that
does the waiting (``MetaStudioClient._request``), so it can be read, and tested, on its own.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

from reconciler.api.attempt import Failure


@dataclass(frozen=True)
class RetryPolicy:
    """How failed attempts are retried; the delays are parameters so tests can shrink them."""

    max_retries: int = 5  # failures (5xx, transport) retried per request
    # 429s waited out per request: they do not use up the failure budget (the service asked us
    # to wait, not to give up); this and total_time (and the run's deadline) bound them.
    max_throttled: int = 30
    backoff_base: float = 0.5  # 5xx / transport: uniform(base, min(cap, base * 2**n))
    backoff_cap: float = 8.0
    throttle_delay: tuple[float, float] = (2.0, 5.0)  # 429 without Retry-After
    retry_after_cap: float = 60.0
    total_time: float = 180.0  # no new attempt would start after this many seconds
    # A refused loopback port (Failure.quick): 0.05 s doubling to 0.4 s, about 0.75 s in all
    # for the default five retries: long enough for a local emulator that is starting up.
    quick_base: float = 0.05
    quick_cap: float = 0.4

    def backoff(self, attempt: int) -> float:
        upper = min(self.backoff_cap, self.backoff_base * 2**attempt)
        return random.uniform(min(self.backoff_base, upper), upper)

    def quick_backoff(self, attempt: int) -> float:
        """The wait after a failure that is cheap to ask about again (a refused loopback port)."""
        return min(self.quick_cap, self.quick_base * 2.0**attempt)

    def throttle(self, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return random.uniform(*self.throttle_delay)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class RetryBudget:
    """What one request may still retry: the policy's two budgets and its deadline.

    Failures (5xx, transport) use up ``max_retries``; 429s use up ``max_throttled`` only,
    because the service asked us to wait, not to give up.  Both stop at ``deadline``."""

    policy: RetryPolicy
    deadline: float  # time.monotonic() after which no wait may end
    failures: int = 0  # failed attempts so far that count against max_retries
    throttles: int = 0  # 429s waited out so far

    @classmethod
    def starting(cls, policy: RetryPolicy, now: float, run_left: float | None) -> RetryBudget:
        """A request's budget from ``now``; ``run_left``: seconds left of the run's
        ``--timeout`` (:func:`reconciler.interrupts.remaining`), None without one."""
        deadline = now + policy.total_time
        if run_left is not None:
            deadline = min(deadline, now + run_left)
        return cls(policy, deadline)

    @property
    def attempt(self) -> int:
        """The number the next attempt is known by (429s do not count)."""
        return self.failures + 1

    def wait_after(self, failure: Failure, now: float) -> float | None:
        """Seconds to wait before the next attempt after ``failure``, or None to give up."""
        if not failure.retryable:
            return None
        if failure.throttle_wait is not None:
            wait = failure.throttle_wait
            self.throttles += 1
        elif failure.quick:
            wait = self.policy.quick_backoff(self.failures)
            self.failures += 1
        else:
            wait = self.policy.backoff(self.failures)
            self.failures += 1
        spent = self.failures > self.policy.max_retries
        if spent or self.throttles > self.policy.max_throttled or now + wait > self.deadline:
            return None
        return wait
