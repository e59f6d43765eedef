"""The words for what a run retried: one line per kind, shown at the default verbosity."""

from __future__ import annotations

from reconciler.api.retries import RetryTally
from reconciler.render.words import plural


def retry_lines(tally: RetryTally) -> list[str]:
    """``retried 12 requests: 10 x HTTP 500, 2 x connection reset`` (``retried 1 request 5
    times: ...`` when requests were retried more than once) and the throttling line."""
    lines = []
    if tally.retried:
        total = sum(tally.retried.values())
        requests = tally.requests_retried or total
        kinds = ", ".join(f"{n} x {kind}" for kind, n in sorted_kinds(tally))
        if requests == total:
            lines.append(f"retried {plural(total, 'request')}: {kinds}")
        else:  # "retried 1 request 5 times", "retried 3 requests 7 times in all"
            times = f"{total} times" if requests == 1 else f"{total} times in all"
            lines.append(f"retried {plural(requests, 'request')} {times}: {kinds}")
    if tally.throttled:
        lines.append(throttle_line(tally))
    return lines


def throttle_line(tally: RetryTally) -> str:
    """``throttled 14 times by MetaStudio (HTTP 429, update limit 5/s); about 7.2 s lost; ...``:
    the limits the service stated, and the wall time the back-offs cost (not their sum)."""
    stated = [f"{api} limit {limit:g}/s" for api, limit in sorted(tally.limits.items())]
    said = ", ".join(["HTTP 429", *stated])
    pace = (
        "requests now go at the limit the service applies"
        if stated
        else "requests were slowed until the service accepted them"
    )
    return (
        f"throttled {plural(tally.throttled, 'time')} by MetaStudio ({said}); "
        f"about {tally.throttle_lost:.1f} s lost; {pace}"
    )


def sorted_kinds(tally: RetryTally) -> list[tuple[str, int]]:
    """Most frequent first; equal counts by name, so the line is the same run to run."""
    return sorted(tally.retried.items(), key=lambda item: (-item[1], item[0]))
