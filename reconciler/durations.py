"""Durations as people type them on a command line: ``30s``, ``5m``, ``1h30m``, ``250ms``.

One parser for every option that takes a time, so they all accept the same spellings (Go's and
Prometheus's units: ``ms``, ``s``, ``m``, ``h``); a bare number is seconds.
"""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_TERM = re.compile(rf"({_NUMBER})(ms|s|m|h)")
_WHOLE = re.compile(rf"(?:{_NUMBER}(?:ms|s|m|h))+")


class DurationError(ValueError):
    """A duration that cannot be read (callers say which option it came from)."""


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``NUMBER UNIT`` terms (``1m30s``) or a bare number of seconds."""
    value = text.strip().lower()
    if re.fullmatch(_NUMBER, value):
        seconds = float(value)
    elif _WHOLE.fullmatch(value):
        seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _TERM.findall(value))
    else:
        raise DurationError(
            f"{text!r} is not a duration; use a number and a unit, e.g. 30s, 5m, 1h30m or 250ms"
        )
    if not math.isfinite(seconds):
        raise DurationError(f"{text!r} is too long a duration")
    return seconds


def format_duration(seconds: float) -> str:
    """A short spelling of ``seconds`` that :func:`parse_duration` reads back (``1m30s``)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    if abs(seconds - whole) > 0.0005:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"
