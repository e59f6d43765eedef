"""JSON documents written piece by piece: a long list is encoded one item at a time.

A plan of 100,000 assets is a 70 MB document; building it whole (every asset as a dict, then one
string) took 400 MB on top of the plan itself.  Here the document's skeleton is built with each
long list replaced by a :class:`Streamed` marker, and the text is produced in pieces: the
skeleton's text up to a marker, then the list's items, each made and encoded only when it is
written.  The result is exactly what ``json.dumps`` gives for the whole document, in both forms
this project writes: indented (:func:`indented`) and canonical (:func:`canonical`, sorted keys,
no whitespace, for checksums).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

_INDENTED = json.JSONEncoder(indent=2, ensure_ascii=False, allow_nan=False)
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


@dataclass(frozen=True)
class Streamed:
    """A list whose items are made when they are written (``make(item)`` for each source item).

    It can be written more than once (a checksum pass and a write)."""

    items: Sequence[Any]
    make: Callable[[Any], Any]


def indented(document: Any, end: str = "") -> Iterator[str]:
    """``json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + end``, in
    pieces."""

    def items(streamed: Streamed, line_indent: int) -> Iterator[str]:
        if not streamed.items:
            yield "[]"
            return
        inner = " " * (line_indent + 2)
        yield "["
        for index, item in enumerate(streamed.items):
            text = _INDENTED.encode(streamed.make(item))
            yield ("\n" if index == 0 else ",\n") + inner + text.replace("\n", "\n" + inner)
        yield "\n" + " " * line_indent + "]"

    yield from _spliced(document, _INDENTED, items)
    if end:
        yield end


def canonical(document: Any) -> Iterator[str]:
    """``json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, in
    pieces."""

    def items(streamed: Streamed, _line_indent: int) -> Iterator[str]:
        yield "["
        for index, item in enumerate(streamed.items):
            yield ("," if index else "") + _CANONICAL.encode(streamed.make(item))
        yield "]"

    return _spliced(document, _CANONICAL, items)


def _spliced(
    document: Any,
    encoder: json.JSONEncoder,
    items: Callable[[Streamed, int], Iterator[str]],
) -> Iterator[str]:
    markers: dict[str, Streamed] = {}
    nonce = uuid.uuid4().hex

    def skeleton(value: Any) -> Any:
        if isinstance(value, Streamed):
            marker = f"\x00streamed-{nonce}-{len(markers)}\x00"
            markers[marker] = value
            return marker
        if isinstance(value, dict):
            return {key: skeleton(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [skeleton(item) for item in value]
        return value

    text = encoder.encode(skeleton(document))
    # Each marker is a string in the skeleton's text, quoted and with its NULs escaped.
    position = 0
    for marker, streamed in markers.items():
        quoted = json.dumps(marker)
        at = text.index(quoted, position)
        line_start = text.rfind("\n", 0, at) + 1
        line_indent = len(text[line_start:at]) - len(text[line_start:at].lstrip(" "))
        yield text[position:at]
        yield from items(streamed, line_indent)
        position = at + len(quoted)
    yield text[position:]
