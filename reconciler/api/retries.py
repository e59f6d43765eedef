"""What a run's requests had to retry, by kind, so a run can say so at the default verbosity.

The client records every retry it makes (not the final failure, which is reported as an error):
throttling answers (429) with the time waited, and other retryable failures by kind
(``HTTP 500``, ``connection reset``, ``timeout``...). A run that retried 40 times then says so in
two lines instead of nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RetryTally:
    """Counts shared by every client of one run."""

    retried: Counter[str] = field(default_factory=Counter)  # kind -> retries (429 excluded)
    throttled: int = 0  # 429 answers that were retried
    throttle_wait: float = 0.0  # seconds waited for them

    def retry(self, kind: str) -> None:
        self.retried[kind] += 1

    def throttle(self, delay: float) -> None:
        self.throttled += 1
        self.throttle_wait += delay

    def __bool__(self) -> bool:
        return bool(self.retried or self.throttled)
