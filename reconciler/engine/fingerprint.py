"""Fingerprints: what apply compares to know that live, or the write-only values, changed.

* ``live_fingerprint``: sha256 of the live asset in canonical form, without the volatile fields
  (policy.VOLATILE_FIELDS).  A saved plan carries it per asset; apply refetches and refuses the
  plan as stale when it differs.  It covers the whole asset, not only the managed fields, because
  a nested block is sent whole and filled from live: a change anywhere in it must stale the plan.
* ``write_only_fingerprint``: one sha256 per managed write-only field, written as
  ``field:hex,field:hex``.  Per field, so that changing ``review_config`` does not re-send an
  unchanged ``shared_config``.  The canonical form is used, so reordering
  ``allowed_project_ids`` or rewriting ``expire_time`` in another offset is not a change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from reconciler.engine import normalize, policy


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def live_fingerprint(raw: Mapping[str, Any]) -> str:
    """Stable hash of the live asset's content (see module docstring)."""
    content = {k: v for k, v in raw.items() if k not in policy.VOLATILE_FIELDS}
    return sha256_hex(normalize.canonical_json(content))


def field_fingerprint(field: str, value: Any) -> str:
    """Hash of one write-only field's value in canonical form."""
    canonical = normalize.canon((field,), normalize.prune_none(value))
    return sha256_hex(json.dumps(canonical, sort_keys=True, separators=(",", ":")))


def write_only_fingerprint(values: Mapping[str, Any]) -> str:
    """``review_config:<hex>,shared_config:<hex>`` for the given write-only fields."""
    return ",".join(f"{name}:{field_fingerprint(name, values[name])}" for name in sorted(values))


def parse_write_only_fingerprint(text: str | None) -> dict[str, str]:
    """Inverse of :func:`write_only_fingerprint`; unreadable text yields no fields."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        name, sep, digest = part.partition(":")
        if sep and name and digest:
            out[name] = digest
    return out
