"""Retries are counted by kind, and said in one line per kind."""

from __future__ import annotations

import httpx

from reconciler.api.client import transport_kind
from reconciler.api.retries import RetryTally
from reconciler.render.retry_text import retry_lines


def test_transport_failures_are_named_as_a_person_would() -> None:
    request = httpx.Request("GET", "http://x")
    assert transport_kind(httpx.ReadTimeout("t", request=request)) == "timeout"
    assert transport_kind(httpx.ConnectError("[Errno 111] Connection refused")) == (
        "connection refused"
    )
    assert transport_kind(httpx.ReadError("reset by peer")) == "connection reset"
    assert transport_kind(httpx.RemoteProtocolError("closed")) == "connection closed"


def test_one_line_per_kind_with_counts() -> None:
    now = [0.0]
    tally = RetryTally(clock=lambda: now[0])
    assert not tally and retry_lines(tally) == []
    for _ in range(10):
        tally.retry("HTTP 500")
    tally.retry("connection reset")
    tally.retry("connection reset")
    tally.throttle(2.5, limit=5, api="update")
    now[0] = 60.0
    assert retry_lines(tally) == [
        "retried 12 requests: 10 x HTTP 500, 2 x connection reset",
        "throttled 1 time by MetaStudio (HTTP 429, update limit 5/s); about 2.5 s lost; "
        "requests now go at the limit the service applies",
    ]
    single = RetryTally()
    single.retry("timeout")
    assert retry_lines(single) == ["retried 1 request: 1 x timeout"]
