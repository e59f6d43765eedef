"""The one escape helper: nothing from the service can colour the terminal or start a line."""

from __future__ import annotations

import json

from reconciler.escape import (
    clean_lines,
    clean_text,
    escape_invisible,
    escaped_json,
    invisible_difference,
)


def test_control_and_format_characters_are_shown_not_sent() -> None:
    assert escape_invisible("Sara\x1b[31m") == "Sara\\u001b[31m"
    assert escape_invisible("a\u202eb") == "a\\u202eb"  # right-to-left override
    assert escape_invisible("plain Ünïcödé 中文") == "plain Ünïcödé 中文"


def test_clean_text_keeps_one_line() -> None:
    assert clean_text("Evil\r\nPlan: 0 to change.") == "Evil Plan: 0 to change."
    assert clean_text("a\rb") == "a b"
    assert "\n" not in clean_text("x\u2028y\u2029z\x85w")


def test_clean_lines_keeps_our_newlines_and_nothing_else() -> None:
    text = clean_lines("2 problems:\n  a.yaml: bad \x1b[2J\r\n  b.yaml: ok")
    assert text.split("\n") == ["2 problems:", "  a.yaml: bad \\u001b[2J", "  b.yaml: ok"]
    assert "\x1b" not in text and "\r" not in text


def test_invisible_difference_names_how_two_values_differ() -> None:
    assert (
        invisible_difference("Caf\u00e9", "Cafe\u0301") == "differs only in Unicode normalisation"
    )
    assert invisible_difference("ab", "a\u200bb") == "differs in invisible characters"
    assert invisible_difference("a b", "a\u00a0b") == "differs in invisible characters"
    assert invisible_difference("a\u2028", "a") == "differs only in trailing whitespace"
    assert invisible_difference("x", "x\n") == "differs only in trailing whitespace"
    assert invisible_difference(["Caf\u00e9", 1], ["Cafe\u0301", 1]) is not None
    # Visibly different, equal, or of another shape: nothing to mark.
    assert invisible_difference("Sara", "Sarah") is None
    assert invisible_difference("Sara", "Sara") is None
    assert invisible_difference(["Caf\u00e9"], ["Cafe\u0301", "x"]) is None
    assert invisible_difference({"a": "x"}, {"a": "x\u200b", "b": 1}) is None
    assert invisible_difference(1, 1.5) is None


def test_escaped_json_reads_back_exactly_and_hides_nothing() -> None:
    for value in ["Cafe\u0301", "a\u00a0b ", "\u200d\x1b\u202e", "中文\u3000", "😀", {"k": ["é"]}]:
        shown = escaped_json(value)
        assert json.loads(shown) == value
        assert shown.isascii() or all(ch.isprintable() for ch in shown)
    assert escaped_json("Cafe\u0301") == '"Cafe\\u0301"'
    assert escaped_json("Sara  ") == '"Sara\\u0020\\u0020"'
    assert escaped_json("中文") == '"中文"'  # plain letters stay readable
