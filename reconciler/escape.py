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

import unicodedata

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
