"""Per-asset exponential backoff of self-heal attempts, as Argo CD spaces out failed syncs.

A heal that fails (the PUT is refused, the service did not take a field, the asset changed
since it was planned) is retried no sooner than ``base`` later, then ``2 * base``, ``4 * base``...
up to ``cap``; one success forgets the failures.  Without it a permanently refused write would be
sent again every cycle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Failures:
    count: int
    next_at: float


class HealBackoff:
    """When each asset may next be healed; times are ``time.monotonic()`` seconds."""

    def __init__(self, base: float, cap: float, factor: float = 2.0) -> None:
        self.base = base
        self.cap = max(cap, base)
        self.factor = factor
        self._failures: dict[str, _Failures] = {}

    def allowed(self, asset_id: str, now: float) -> bool:
        state = self._failures.get(asset_id)
        return state is None or now >= state.next_at

    def wait(self, asset_id: str, now: float) -> float:
        """Seconds until the asset may be healed again (0 when it may now)."""
        state = self._failures.get(asset_id)
        return 0.0 if state is None else max(0.0, state.next_at - now)

    def failures(self, asset_id: str) -> int:
        state = self._failures.get(asset_id)
        return 0 if state is None else state.count

    def failed(self, asset_id: str, now: float) -> float:
        """Count a failure; returns the delay before the next attempt."""
        count = self.failures(asset_id) + 1
        delay = min(self.cap, self.base * self.factor ** (count - 1))
        self._failures[asset_id] = _Failures(count, now + delay)
        return delay

    def succeeded(self, asset_id: str) -> None:
        self._failures.pop(asset_id, None)

    def forget_except(self, asset_ids: set[str]) -> None:
        """Drop assets that are no longer drifted (their next heal starts afresh)."""
        for asset_id in list(self._failures):
            if asset_id not in asset_ids:
                del self._failures[asset_id]
