"""Bounded answers: size limits while streaming, JSON depth, non-finite numbers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reconciler.api.answers import (
    AnswerTooLarge,
    BadJson,
    decode_json,
    nesting_depth,
    non_finite_path,
    read_bounded,
)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    read: list[bytes] = []

    async def tracked() -> AsyncIterator[bytes]:
        read.append(b"x")
        yield b"x"

    with pytest.raises(AnswerTooLarge, match="declares 2,097,152 bytes, more than the limit of 1"):
        await read_bounded(tracked(), 1, str(2 * 1024 * 1024))
    assert read == []


async def test_reading_stops_at_the_first_chunk_past_the_limit() -> None:
    taken: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for i in range(10_000):
            taken.append(i)
            yield b"x" * 1024

    with pytest.raises(AnswerTooLarge, match="passed 1,049,600 bytes"):
        await read_bounded(endless(), 1, None)
    assert len(taken) == 1025


async def test_a_body_within_the_limit_is_returned_whole() -> None:
    assert await read_bounded(chunks(b'{"a"', b": 1}"), 1, "8") == b'{"a": 1}'


def test_deep_json_is_bad_json_not_a_recursion_error() -> None:
    with pytest.raises(BadJson, match="nested deeper than 64 levels"):
        decode_json(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(BadJson, match="nested deeper than 64 levels"):
        decode_json(b'{"a": ' * 65 + b"1" + b"}" * 65)
    data, non_finite = decode_json(b'{"a": ' * 63 + b"1" + b"}" * 63)
    assert nesting_depth(data, 64) == 63 and not non_finite


@pytest.mark.parametrize("body", [b'{"x": NaN}', b'{"x": [Infinity]}', b'{"x": -1e999}'])
def test_non_finite_numbers_are_flagged(body: bytes) -> None:
    data, non_finite = decode_json(body)
    assert non_finite
    assert non_finite_path(data) in ("x", "x[0]")


def test_finite_answers_are_not_flagged_and_paths_are_exact() -> None:
    _, non_finite = decode_json(b'{"a": 1.5, "b": [1, 2e10], "c": "NaN"}')
    assert not non_finite
    assert non_finite_path({"a": {"b": [1.0, float("nan")]}}) == "a.b[1]"
    assert non_finite_path({"a": [1.0]}) is None


@pytest.mark.parametrize("body", [b"<html>", b"\xff\xfe", b"1" * 5000])
def test_invalid_json_is_bad_json(body: bytes) -> None:
    with pytest.raises(BadJson, match="not JSON"):
        decode_json(body)
