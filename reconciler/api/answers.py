"""Bounded answers: how much of a response body is read, how deep its JSON may nest, and which
numbers in it are not numbers.

The service is a remote party; a broken or hostile one must not be able to exhaust memory with a
huge body, the stack with deep JSON, or the output with NaN.  A body is read in chunks and
abandoned as soon as it passes its limit (a ``Content-Length`` over the limit is refused before
reading), JSON nested deeper than :data:`MAX_JSON_DEPTH` is refused, and non-finite numbers
(``NaN``, ``Infinity``, ``1e999``) are found so that the asset holding one can be reported.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

MiB = 1024 * 1024
DEFAULT_MAX_RESPONSE_MB = 32
# An asset is at most about six levels deep; 64 leaves room for what the service may add while
# staying far below Python's recursion limit for every later recursive step (diff, render).
MAX_JSON_DEPTH = 64


class AnswerTooLarge(Exception):
    """The body passed the size limit (``size`` is what was seen when reading stopped)."""

    def __init__(self, size: int, limit_mb: float, declared: bool) -> None:
        super().__init__(size, limit_mb, declared)
        self.size = size
        self.limit_mb = limit_mb
        self.declared = declared

    def __str__(self) -> str:
        seen = "declares" if self.declared else "passed"
        return (
            f"the response {seen} {self.size:,} bytes, more than the limit of "
            f"{self.limit_mb:g} MiB (max_response_mb of the target)"
        )


class BadJson(Exception):
    """The body is not a JSON document this client accepts."""


async def read_bounded(
    chunks: AsyncIterator[bytes], limit_mb: float, declared_length: str | None
) -> bytes:
    """The whole body, or :class:`AnswerTooLarge` as soon as more than ``limit_mb`` MiB arrived.

    ``chunks`` are the decoded bytes (after gzip), so a compressed bomb is bounded as well.
    """
    limit = round(limit_mb * MiB)
    if declared_length is not None and declared_length.strip().isdigit():
        declared = int(declared_length)
        if declared > limit:
            raise AnswerTooLarge(declared, limit_mb, declared=True)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise AnswerTooLarge(len(body), limit_mb, declared=False)
    return bytes(body)


_CONSTANTS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def decode_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> tuple[Any, bool]:
    """``body`` parsed, and whether it holds a non-finite number (then see
    :func:`non_finite_path`); :class:`BadJson` for invalid JSON or nesting deeper than
    ``max_depth``.  The number hooks run only for ``NaN``/``Infinity`` and for literals with a
    fraction or exponent, which assets hardly hold, so the common answer costs nothing extra."""
    seen: list[bool] = []

    def constant(name: str) -> float:
        seen.append(True)
        return _CONSTANTS[name]

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):  # 1e999
            seen.append(True)
        return value

    try:
        data = json.loads(body, parse_constant=constant, parse_float=number)
    except RecursionError:
        raise BadJson(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # also UnicodeDecodeError and over-long integers
        raise BadJson(f"the response is not JSON ({type(exc).__name__})") from None
    if nesting_depth(data, max_depth) > max_depth:
        raise BadJson(f"JSON nested deeper than {max_depth} levels")
    return data, bool(seen)


def nesting_depth(value: Any, limit: int) -> int:
    """How deep ``value`` nests (a scalar is 0), counted up to ``limit + 1``; iterative."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        kind = type(node)
        if kind is dict:
            children: Any = node.values()
        elif kind is list:
            children = node
        else:
            continue
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        for child in children:
            child_kind = type(child)
            if child_kind is dict or child_kind is list:
                stack.append((child, depth + 1))
    return deepest


def non_finite_path(value: Any, prefix: str = "") -> str | None:
    """The dotted path of the first non-finite number inside ``value``, else ``None``."""
    stack: list[tuple[Any, str]] = [(value, prefix)]
    while stack:
        node, path = stack.pop()
        if type(node) is float:
            if not math.isfinite(node):
                return path or "(the value)"
        elif type(node) is dict:
            stack.extend(
                (child, f"{path}.{key}" if path else str(key))
                for key, child in reversed(node.items())
            )
        elif type(node) is list:
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(node))))
    return None
