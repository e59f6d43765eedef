"""Durations as typed on the command line."""

from __future__ import annotations

import pytest

from reconciler.durations import DurationError, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("30", 30),
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        (" 2M ", 120),
        ("1.5s", 1.5),
    ],
)
def test_spellings(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "-5s", "5 minutes", "5d", "s", "1m30", "m5"])
def test_bad_spellings_say_what_is_accepted(text: str) -> None:
    with pytest.raises(DurationError, match=r"e\.g\. 30s, 5m"):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [0.25, 1.0, 30.0, 90.0, 300.0, 5400.0, 3661.0, 2.5])
def test_formatting_reads_back(seconds: float) -> None:
    from reconciler.durations import format_duration

    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
    assert format_duration(300) == "5m"
