"""The tool's own timestamps: RFC 3339, UTC, whole seconds, ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def now_rfc3339() -> str:
    """Now, e.g. ``2026-01-31T12:00:00Z`` (plans, drift reports, write-only records)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
