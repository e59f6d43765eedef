"""The one escape helper: nothing from the service can colour the terminal or start a line."""

from __future__ import annotations

from reconciler.escape import clean_lines, clean_text, escape_invisible


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
