"""Text from the service, from live data or from files, made safe to print on one line.

A live asset's name, a service error message or a file name can hold control characters (an
escape sequence that colours or clears the terminal, a carriage return or newline that starts a
forged line such as ``Plan: 0 to change.``) and format characters (bidi overrides that reorder
what is shown).  Every line that prints such text passes it through :func:`clean_text` (or
:func:`clean_lines` for a message of several lines of our own): those characters are shown as
``\\uXXXX`` instead.  Renderers, apply and import lines, error and warning lines and log records
all use this one helper.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable

_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def escape_invisible(text: str) -> str:
    """``text`` with control (Cc), format (Cf: bidi overrides, zero-width), separator (Zl, Zp)
    and unassigned characters shown as ``\\uXXXX``; printable text is returned as it is."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif unicodedata.category(ch) in _INVISIBLE:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(" ")
    return "".join(out)


def clean_text(text: object) -> str:
    """Free text (names, messages, ids, paths) on one line, invisible characters escaped."""
    return escape_invisible(" ".join(str(text).splitlines()))


def clean_lines(text: object) -> str:
    """A message of several lines of our own (``\\n`` kept), each line cleaned; a carriage
    return or other line break inside a line cannot start a forged line."""
    return "\n".join(clean_text(line) for line in str(text).split("\n"))


# --- values that differ but print alike ---------------------------------------------------------

NORMALISATION = "differs only in Unicode normalisation"
TRAILING_WHITESPACE = "differs only in trailing whitespace"
INVISIBLE = "differs in invisible characters"
_HIDDEN = frozenset({*_INVISIBLE, "Zs"})  # plus spaces other than " " (no-break, thin, ...)


def _skeleton(text: str) -> str:
    """What a reader sees of ``text``: NFC, without control, format (zero-width, bidi) and
    separator characters, every kind of space shown as one plain space, trailing spaces gone."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        category = unicodedata.category(ch)
        if category == "Zs":
            out.append(" ")
        elif category not in _INVISIBLE:
            out.append(ch)
    return "".join(out).rstrip()


def _string_difference(before: str, after: str) -> str | None:
    if before == after:
        return None
    if unicodedata.normalize("NFC", before) == unicodedata.normalize("NFC", after):
        return NORMALISATION
    if before.rstrip() == after.rstrip():
        return TRAILING_WHITESPACE
    if _skeleton(before) == _skeleton(after):
        return INVISIBLE
    return None


def invisible_difference(before: object, after: object) -> str | None:
    """Why two different values would look alike to a reviewer (a note such as ``differs only in
    Unicode normalisation``), or ``None`` when they are equal or visibly different.

    Strings are compared as a reader sees them; lists and objects of the same shape when every
    part that differs, differs invisibly.  A plan or drift report that would otherwise print
    ``"Café" -> "Café"`` shows this note and both values through :func:`escaped_json`.
    """
    if isinstance(before, str) and isinstance(after, str):
        return _string_difference(before, after)
    reasons: set[str] = set()
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        pairs = list(zip(before, after, strict=True))
    elif isinstance(before, dict) and isinstance(after, dict) and before.keys() == after.keys():
        pairs = [(before[key], after[key]) for key in before]
    else:
        return None
    for old, new in pairs:
        if old == new:
            continue
        reason = invisible_difference(old, new)
        if reason is None:
            return None
        reasons.add(reason)
    if not reasons:
        return None
    return reasons.pop() if len(reasons) == 1 else INVISIBLE


def _needs_escape(ch: str) -> bool:
    """A character whose look does not tell it apart: anything beyond printable ASCII that is a
    combining mark, has a decomposition (precomposed letters, compatibility forms such as
    full-width letters and ligatures), is a space other than ``" "`` or is invisible."""
    if " " <= ch <= "~":
        return False
    category = unicodedata.category(ch)
    return category[0] == "M" or category in _HIDDEN or bool(unicodedata.decomposition(ch))


def _u_escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # a JSON surrogate pair, so the escaped text still reads back exactly
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _escaped_string(text: str) -> str:
    body = text.rstrip(" ")
    out = [
        _u_escape(ch) if _needs_escape(ch) else json.dumps(ch, ensure_ascii=False)[1:-1]
        for ch in body
    ]
    return '"' + "".join(out) + "\\u0020" * (len(text) - len(body)) + '"'


def escaped_json(value: object) -> str:
    """``value`` as JSON with every character that could hide a difference written as
    ``\\uXXXX`` (``"Cafe\\u0301"``), and trailing spaces of strings too: still JSON that reads
    back to exactly ``value``, and safe to print (nothing left unescaped is invisible)."""
    if isinstance(value, str):
        return _escaped_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(escaped_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{_escaped_string(str(k))}: {escaped_json(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return _escaped_string(str(value))


def shown_pair(
    before: object, after: object, plain: Callable[[object], str]
) -> tuple[str, str, str | None]:
    """How a plan or drift report prints the two sides of a change: ``plain(value)`` each and no
    note when they visibly differ; else both through :func:`escaped_json` and the note saying
    how they differ (:func:`invisible_difference`), so a reviewer sees what will change."""
    reason = invisible_difference(before, after)
    if reason is None:
        return plain(before), plain(after), None
    return escaped_json(before), escaped_json(after), reason
