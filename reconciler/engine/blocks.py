"""Whole-block bodies from the raw live JSON (design.md 3.7).

A nested object that changes is sent whole, so that the update is right whether the service
merges or replaces nested objects.  The fields the manifest leaves out are filled from the live
block *as the service returned it*: every key is kept, including keys this tool does not know
(the service adds fields over time), and only the keys known to be read-only are dropped (the
service fills them itself).  Filling from the typed model instead would silently delete every
field the model does not know.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.engine import normalize, policy
from reconciler.engine.plan import ItemChange
from reconciler.fieldpath import format_path

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

    Maps are merged key by key, so live keys the manifest does not name stay.  Anything else,
    lists included, is the declared value: a list item has no position-independent identity
    here, so filling it by position could move one item's values onto another.  The ordered
    lists whose items do have one are filled by :func:`match_items` instead.
    """
    if isinstance(declared, Mapping) and isinstance(live, Mapping):
        out = dict(live)
        for key, value in declared.items():
            out[key] = lay_over((*path, key), live.get(key), value)
        return out
    return declared


class Unmatchable(ValueError):
    """An ordered list whose items cannot be told apart safely; the message says what to write."""


def match_items(
    path: Path, live: Sequence[Any], declared: Sequence[Any], identity: str
) -> tuple[list[Any], tuple[ItemChange, ...]]:
    """The list to send at ``path`` and what each item is, matching items by ``identity``.

    A declared item is filled (:func:`lay_over`) only from the live item with the same value of
    ``identity``; one live has no item for is sent as written.  Raises :class:`Unmatchable`
    when that would be a guess: two declared items with the same identity; an item without one
    while live holds items no other declared item claims and that carry keys it leaves out; or
    live items sharing its identity that differ in the keys it leaves out.
    """
    where = format_path(path)
    _refuse_duplicates(where, declared, identity)
    filled = [live_fill((*path, index), item) for index, item in enumerate(live)]
    by_identity: dict[str, list[int]] = {}
    for index, item in enumerate(filled):
        if isinstance(item, Mapping) and item.get(identity) is not None:
            by_identity.setdefault(_key(item[identity]), []).append(index)
    claimed = {
        _key(item[identity])
        for item in declared
        if isinstance(item, Mapping) and item.get(identity) is not None
    }
    sent: list[Any] = []
    items: list[ItemChange] = []
    for position, item in enumerate(declared):
        here = (*path, position)
        if not isinstance(item, Mapping):
            sent.append(item)
            items.append(ItemChange(None, item))
            continue
        if item.get(identity) is None:
            loose = [
                index
                for index, live_item in enumerate(filled)
                if not (
                    isinstance(live_item, Mapping)
                    and live_item.get(identity) is not None
                    and _key(live_item[identity]) in claimed
                )
            ]
            missing = _unwritten(item, [filled[i] for i in loose])
            if missing:
                fix = identity if identity in missing else _names(missing)
                raise Unmatchable(
                    f"{format_path(here)} has no {identity}, so it cannot be matched with a "
                    f"live item (live {_items(loose)}, which no other item names, "
                    f"{'have' if len(loose) != 1 else 'has'} {_names(missing)} that it leaves "
                    f"out): write its {fix} in the manifest"
                )
            sent.append(dict(item))
            items.append(ItemChange(None, dict(item), changed=tuple(item)))
            continue
        matches = by_identity.get(_key(item[identity]), [])
        if not matches:
            sent.append(dict(item))
            items.append(ItemChange(None, dict(item), changed=tuple(item)))
            continue
        differing = [
            key
            for key in _unwritten(item, [filled[i] for i in matches])
            if len({_key(_pick((*here, key), filled[i], key)) for i in matches}) > 1
        ]
        if differing:
            raise Unmatchable(
                f"live {where} has {len(matches)} items with {identity} "
                f"{_json(item[identity])} ({_items(matches)}) that differ in "
                f"{_names(differing)}, so which values to keep is unknown: write "
                f"{_names(differing)} for {format_path(here)} in the manifest"
            )
        index = matches[0]
        value = lay_over(here, filled[index], item)
        before = live[index]
        sent.append(value)
        items.append(
            ItemChange(
                before,
                value,
                live_index=index,
                changed=tuple(k for k in value if _differs((*here, k), value[k], before.get(k))),
                kept=tuple(k for k in value if k not in item),
            )
        )
    used = {item.live_index for item in items}
    items.extend(
        ItemChange(item, None, live_index=index)
        for index, item in enumerate(live)
        if index not in used
    )
    return sent, tuple(items)


def _refuse_duplicates(where: str, declared: Sequence[Any], identity: str) -> None:
    seen: dict[str, int] = {}
    for position, item in enumerate(declared):
        if not isinstance(item, Mapping) or item.get(identity) is None:
            continue
        first = seen.setdefault(_key(item[identity]), position)
        if first != position:
            raise Unmatchable(duplicate_identity(where, identity, item[identity], first, position))


def duplicate_identity(where: str, identity: str, value: Any, first: int, second: int) -> str:
    """The refusal of two declared items with the same identity (the manifest schema's too)."""
    return (
        f"{where}[{first}] and {where}[{second}] both have {identity} {_json(value)}: "
        f"{identity} tells the items apart, so give each item its own"
    )


def _key(value: Any) -> str:
    """An identity value as a dictionary key (``1`` and ``"1"`` stay apart)."""
    return json.dumps(value, sort_keys=True)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _unwritten(item: Mapping[str, Any], candidates: Sequence[Any]) -> list[str]:
    """Keys the live ``candidates`` carry that ``item`` leaves out, in first-seen order."""
    keys: dict[str, None] = {}
    for candidate in candidates:
        if isinstance(candidate, Mapping):
            keys.update((key, None) for key in candidate if key not in item)
        else:
            keys["(item)"] = None
    return list(keys)


def _pick(path: Path, item: Any, key: str) -> Any:
    """The canonical value filling from a live item would send for ``key`` (absent: None)."""
    if not isinstance(item, Mapping):
        return normalize.canon(path, item)
    return normalize.canon(path, item.get(key))


def _differs(path: Path, new: Any, old: Any) -> bool:
    """Whether a value changes for the service (``1`` and ``1.0`` do not; ``true`` and ``1`` do)."""
    a, b = normalize.canon(path, new), normalize.canon(path, old)
    return a != b or type(a) is not type(b)


def _items(indexes: Sequence[int]) -> str:
    shown = ", ".join(f"[{index}]" for index in indexes)
    return f"item{'s' if len(indexes) != 1 else ''} {shown}"


def _names(keys: Sequence[str]) -> str:
    return ", ".join(keys)


def whole(path: Path, live: Any, declared: Any) -> Any:
    """The value to send at ``path``: the raw live value filled in, the manifest's on top."""
    return lay_over(path, live_fill(path, live), declared)


def has_block(live: Mapping[str, Any], block: str) -> bool:
    """Whether a read holds the ``asset_extra_meta`` block at all (a summary row may not)."""
    extra = live.get("asset_extra_meta")
    return isinstance(extra, Mapping) and block in extra
