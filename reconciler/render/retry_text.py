"""The words for what a run retried: one line per kind, shown at the default verbosity."""

from __future__ import annotations

from reconciler.api.retries import RetryTally
from reconciler.render.words import plural


def retry_lines(tally: RetryTally) -> list[str]:
    """``retried 12 requests: 10 x HTTP 500, 2 x connection reset`` and the throttling line."""
    lines = []
    if tally.retried:
        total = sum(tally.retried.values())
        kinds = ", ".join(f"{n} x {kind}" for kind, n in sorted_kinds(tally))
        lines.append(f"retried {plural(total, 'request')}: {kinds}")
    if tally.throttled:
        lines.append(
            f"throttled {plural(tally.throttled, 'time')} by MetaStudio (HTTP 429), "
            f"waited {tally.throttle_wait:.1f} s in all; the target's rate_limits in "
            "reconciler.yaml set how fast requests are sent"
        )
    return lines


def sorted_kinds(tally: RetryTally) -> list[tuple[str, int]]:
    """Most frequent first; equal counts by name, so the line is the same run to run."""
    return sorted(tally.retried.items(), key=lambda item: (-item[1], item[0]))
