"""Is a read good enough to plan from, and is it still the state a plan was made from?

Pure comparisons for the read-before-write rules of design.md 3.10 and 3.11; the reads
themselves are the run layer's.

* :func:`missing_for_diff`: the managed fields and blocks a (list) read lacks.  A summary row
  without them must be completed with ShowAsset before diffing, because a body built from a read
  that did not contain a block would wipe the rest of that block.
* :func:`changed_fields`: what differs between the live state a plan was made from and a fresh
  read, volatile fields (``update_time``, ``files`` with their signed download URLs) aside.
* :func:`lacking`: top-level fields and blocks the planned read had that a fresh read does not
  (then the fresh read is a summary and must be completed before comparing).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.engine import normalize, policy

_XM = "asset_extra_meta"


def _parts(raw: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(dotted name, value) of each top-level field, with asset_extra_meta split by block."""
    for key, value in raw.items():
        if key in policy.VOLATILE_FIELDS:
            continue
        if key == _XM and isinstance(value, Mapping):
            for block, content in value.items():
                yield f"{_XM}.{block}", content
        else:
            yield key, value


def missing_for_diff(spec: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Managed fields (and ``asset_extra_meta`` blocks) that ``live`` does not contain at all.

    Write-only fields are never returned, so they are not asked for; nor is a block that does
    not belong to the asset's type (the plan refuses it whatever live holds).  A field present
    with an empty value counts as present: the service said what it holds.
    """
    missing: list[str] = []
    own_block = policy.expected_block(spec.get("asset_type") or live.get("asset_type"))
    for key, value in spec.items():
        if key in policy.WRITE_ONLY:
            continue
        if key == _XM and isinstance(value, Mapping):
            extra = live.get(_XM)
            for block in value:
                if block != own_block:
                    continue
                if not isinstance(extra, Mapping) or block not in extra:
                    missing.append(f"{_XM}.{block}")
        elif key not in live:
            missing.append(key)
    return missing


def lacking(planned: Mapping[str, Any], fresh: Mapping[str, Any]) -> list[str]:
    """Fields and blocks of ``planned`` that ``fresh`` does not contain at all."""
    have = {name for name, _ in _parts(fresh)}
    return [name for name, _ in _parts(planned) if name not in have]


def changed_fields(planned: Mapping[str, Any], fresh: Mapping[str, Any]) -> list[str]:
    """Top-level fields (blocks of asset_extra_meta one by one) that differ, volatile ones aside.

    Values are compared in canonical form (1 == 1.0, instants, set-like lists), the same form
    the staleness fingerprint hashes.
    """
    before = dict(_parts(planned))
    after = dict(_parts(fresh))
    names = list(dict.fromkeys([*before, *after]))

    def canonical(name: str, value: Any) -> str:
        return normalize.canonical_json(value, tuple(name.split(".")))

    return [
        name
        for name in names
        if canonical(name, before.get(name)) != canonical(name, after.get(name))
    ]
