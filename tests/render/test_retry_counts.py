"""The retry summary counts requests and retries apart: one request retried five times is not
five requests."""

from __future__ import annotations

from reconciler.api.retries import RetryTally
from reconciler.render.retry_text import retry_lines


def tally(*retries: tuple[str, bool]) -> RetryTally:
    counted = RetryTally()
    for kind, first in retries:
        counted.retry(kind, first=first)
    return counted


def test_one_request_retried_five_times() -> None:
    five = tally(("connection refused", True), *[("connection refused", False)] * 4)
    assert retry_lines(five) == ["retried 1 request 5 times: 5 x connection refused"]


def test_requests_retried_once_each_read_as_before() -> None:
    once = tally(("HTTP 500", True), ("HTTP 500", True), ("connection reset", True))
    assert retry_lines(once) == ["retried 3 requests: 2 x HTTP 500, 1 x connection reset"]


def test_several_requests_retried_more_than_once() -> None:
    mixed = tally(("HTTP 500", True), ("HTTP 500", False), ("timeout", True), ("timeout", False))
    assert retry_lines(mixed) == ["retried 2 requests 4 times in all: 2 x HTTP 500, 2 x timeout"]
