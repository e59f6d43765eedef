"""Timestamps as the service writes them: RFC 3339, UTC, ``Z``, millisecond precision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def format_time(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 instant, or None when ``value`` is not one."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def next_update_time(previous: str | None, now: datetime | None = None) -> str:
    """Now, but strictly later than ``previous`` so that every real change moves update_time."""
    moment = now or datetime.now(UTC)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    last = parse_time(previous) if previous else None
    if last is not None and moment <= last:
        moment = last + timedelta(milliseconds=1)
    return format_time(moment)
