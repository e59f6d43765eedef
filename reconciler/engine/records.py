"""The record of write-only values last applied to an asset (docs/field-semantics.md §3).

The API never returns ``review_config`` or ``shared_config``, so the only way to know whether the
manifest changed them is to remember what was last applied: the write-only fingerprint (see
:mod:`reconciler.engine.fingerprint`) and when.  The planner compares against it; the state store
(:mod:`reconciler.state`) keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """The fingerprint of the write-only values last applied to one asset, and when."""

    fingerprint: str
    applied_at: str  # RFC 3339, UTC
