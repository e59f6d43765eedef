"""Whole-block bodies from the raw live JSON (design.md 3.7).

A nested object that changes is sent whole, so that the update is right whether the service
merges or replaces nested objects.  The fields the manifest leaves out are filled from the live
block *as the service returned it*: every key is kept, including keys this tool does not know
(the service adds fields over time), and only the keys known to be read-only are dropped (the
service fills them itself).  Filling from the typed model instead would silently delete every
field the model does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.engine import policy

Path = tuple[str | int, ...]


def live_fill(path: Path, live: Any) -> Any:
    """The live value at ``path`` as it may be sent back: read-only keys and nulls dropped."""
    if isinstance(live, Mapping):
        return {
            key: live_fill((*path, key), value)
            for key, value in live.items()
            if value is not None and not policy.is_read_only((*path, key))
        }
    if isinstance(live, list):
        return [live_fill((*path, index), item) for index, item in enumerate(live)]
    return live


def lay_over(path: Path, live: Any, declared: Any) -> Any:
    """``declared`` laid over the (already filled) live value at ``path``.

    Maps are merged key by key, so live keys the manifest does not name stay.  A list of objects
    is merged item by item at the same position (the position is the only identity such items
    have), so a field the service keeps on an item the manifest writes survives; items past the
    end of the declared list are dropped, declared items past the end of live are taken as
    written.  Anything else is the declared value.
    """
    if isinstance(declared, Mapping) and isinstance(live, Mapping):
        out = dict(live)
        for key, value in declared.items():
            out[key] = lay_over((*path, key), live.get(key), value)
        return out
    if (
        isinstance(declared, list)
        and isinstance(live, list)
        and policy.pattern(path) not in policy.SET_LIKE
    ):
        return [
            lay_over((*path, index), live[index], item)
            if index < len(live) and isinstance(item, Mapping)
            else item
            for index, item in enumerate(declared)
        ]
    return declared


def whole(path: Path, live: Any, declared: Any) -> Any:
    """The value to send at ``path``: the raw live value filled in, the manifest's on top."""
    return lay_over(path, live_fill(path, live), declared)


def has_block(live: Mapping[str, Any], block: str) -> bool:
    """Whether a read holds the ``asset_extra_meta`` block at all (a summary row may not)."""
    extra = live.get("asset_extra_meta")
    return isinstance(extra, Mapping) and block in extra
