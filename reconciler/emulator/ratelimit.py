"""Per-API token buckets (burst = rate), as the API gateway throttles a single tenant."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

from reconciler.emulator.config import check_rate_limits


class RateLimiter:
    """``acquire(api)`` takes one token, or says how long until one is available."""

    def __init__(
        self, limits: Mapping[str, float], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._limits: dict[str, float] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # api -> (tokens, last refill)
        self.set_limits(limits)

    @property
    def limits(self) -> dict[str, float]:
        return dict(self._limits)

    def set_limits(self, limits: Mapping[str, float]) -> None:
        """Replace the limits (0 or absent = unlimited); buckets start full."""
        checked = check_rate_limits(limits)
        with self._lock:
            self._limits = {k: v for k, v in checked.items() if v > 0}
            self._buckets.clear()

    def acquire(self, api: str) -> float | None:
        """None when the request may go ahead, else the seconds to wait for the next token."""
        with self._lock:
            rate = self._limits.get(api)
            if rate is None:
                return None
            capacity = max(rate, 1.0)
            now = self._clock()
            tokens, last = self._buckets.get(api, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[api] = (tokens - 1.0, now)
                return None
            self._buckets[api] = (tokens, now)
            return (1.0 - tokens) / rate

    def limit_of(self, api: str) -> float | None:
        return self._limits.get(api)


def retry_after_header(wait_seconds: float) -> str:
    """Whole seconds, at least 1 (the header cannot say less)."""
    return str(max(1, math.ceil(wait_seconds)))
