"""What a run's requests had to retry, by kind, so a run can say so at the default verbosity.

The client records every retry it makes (not the final failure, which is reported as an error):
throttling answers (429) with the time waited, and other retryable failures by kind
(``HTTP 500``, ``connection reset``, ``timeout``...). A run that retried 40 times then says so in
two lines instead of nothing.

Throttling is told as the wall time it cost, not the sum of the waits: ten requests throttled at
once each wait the same two seconds, and the run lost two seconds, not twenty. So each 429 is kept
as a window (from the answer to the end of its back-off) and the windows are merged over time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RetryTally:
    """Counts shared by every client of one run."""

    retried: Counter[str] = field(default_factory=Counter)  # kind -> retries (429 excluded)
    requests_retried: int = 0  # distinct requests among those retries
    attempts: Counter[str] = field(default_factory=Counter)  # api -> requests sent (each try)
    throttled: int = 0  # 429 answers that were retried
    throttle_wait: float = 0.0  # seconds waited for them, summed over concurrent requests
    limits: dict[str, float] = field(default_factory=dict)  # api -> per-second limit stated
    throttled_by_api: Counter[str] = field(default_factory=Counter)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    _lost_before: float = field(default=0.0, init=False, repr=False)  # windows closed
    _window: tuple[float, float] | None = field(default=None, init=False, repr=False)  # open

    def retry(self, kind: str, *, first: bool = True) -> None:
        """One retry after a failure of ``kind``; ``first``: the request's first retry (a
        request retried five times is one request, not five)."""
        self.retried[kind] += 1
        if first:
            self.requests_retried += 1

    def attempt(self, api: str) -> None:
        """One request sent to ``api`` (list, show, update), for ``-v``'s count of requests."""
        self.attempts[api] += 1

    def throttle(self, delay: float, *, limit: float | None = None, api: str | None = None) -> None:
        """A 429 that is retried after ``delay`` seconds; ``limit``: the per-second limit the
        service stated for ``api``, if it stated one."""
        self.throttled += 1
        self.throttle_wait += delay
        if api is not None:
            self.throttled_by_api[api] += 1
            if limit is not None:
                self.limits[api] = limit
        start = self.clock()
        end = start + max(delay, 0.0)
        if self._window is not None and start <= self._window[1]:
            self._window = (self._window[0], max(self._window[1], end))
            return
        if self._window is not None:
            self._lost_before += self._window[1] - self._window[0]
        self._window = (start, end)

    @property
    def throttle_lost(self) -> float:
        """Wall seconds during which at least one request was waiting out a 429 (the union of
        the back-off windows; a window still open counts up to now)."""
        if self._window is None:
            return self._lost_before
        start, end = self._window
        return self._lost_before + max(0.0, min(end, self.clock()) - start)

    def __bool__(self) -> bool:
        return bool(self.retried or self.throttled)
