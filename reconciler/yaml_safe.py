"""Safe YAML for manifests: bounded reading, event-level composition, positions for every field.

Manifests come from pull requests, so the reader treats them as untrusted input:

- files larger than :data:`MAX_FILE_BYTES` are refused before they are read whole;
- the text must be UTF-8 without NUL bytes (binary files are refused);
- anchors may be written but aliases (``*name``) are refused, so no alias bomb can expand;
- nesting deeper than :data:`MAX_DEPTH` stops the file at once (the event parser is not
  recursive, so deep input cannot exhaust the stack);
- duplicate keys are reported, each with the place of its first definition;
- tags other than the YAML core ones (``!!str``, ``!!int`` ...) are refused.

Documents are built here from the parser's *events* rather than by the library's composer and
constructor: libyaml's C parser (``ruamel.yaml.clib``) produces the events quickly, and building
plain data from them ourselves gives the line and column of every field on the fast path, with no
second, position-tracking parse when a manifest has errors.

Scalars are resolved with the YAML 1.2 core schema: ``yes``/``no``/``on``/``off`` stay strings,
and timestamps stay strings (RFC 3339 fields such as ``operation_time`` are strings in the API).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import events as ev
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from reconciler.fieldpath import FieldPath

try:  # libyaml through ruamel.yaml.clib: the fast path
    from ruamel.yaml.cyaml import CParser as _CParser  # type: ignore[attr-defined]

    C_PARSER = True
except ImportError:  # pragma: no cover - exercised only where the C extension is missing
    C_PARSER = False

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 32
MAX_PROBLEMS_PER_FILE = 50

Position = tuple[int, int]

_CORE = "tag:yaml.org,2002:"
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_NON_STR_START = frozenset("0123456789+-.~nNtTfF")
_FLOAT_SPECIAL = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")


class YamlProblem(Exception):
    """One problem in a YAML file, with a 1-based position when one is known."""

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        path: FieldPath = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.path = path


@dataclass
class Document:
    """One YAML document as plain data, with the position of the key (or item) of each field."""

    data: Any
    line: int
    column: int
    positions: dict[FieldPath, Position] = field(default_factory=dict, repr=False)
    problems: list[YamlProblem] = field(default_factory=list)
    has_nulls: bool = False  # some value is null (most documents have none to look for)


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES, kind: str = "manifest") -> str:
    """The UTF-8 text of ``path``; refuses oversized, binary and non-UTF-8 files.

    ``kind`` names the file in messages ("manifest", "settings file"). Plain ``os`` calls
    rather than a buffered file object: a tenth of the cost per file, which counts when a
    repository holds 10,000 manifests.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            size = os.fstat(fd).st_size
            if size > max_bytes:
                raise YamlProblem(
                    f"file is {size} bytes; a {kind} may be at most {max_bytes} bytes"
                )
            parts: list[bytes] = []
            remaining = max_bytes + 1
            while remaining > 0:  # until end of file (a special file may come in pieces)
                part = os.read(fd, min(remaining, max(size + 1, 65536)))
                if not part:
                    break
                parts.append(part)
                remaining -= len(part)
        finally:
            os.close(fd)
    except OSError as exc:
        raise YamlProblem(f"cannot read file: {exc.strerror or exc}") from None
    raw = parts[0] if len(parts) == 1 else b"".join(parts)
    if len(raw) > max_bytes:  # grew while being read, or a special file without a size
        raise YamlProblem(f"file is larger than {max_bytes} bytes, the limit for a {kind}")
    wide = _wide_encoding(raw)
    if wide is not None:
        raise YamlProblem(
            f"the file is {wide} encoded; a {kind} must be UTF-8: convert it "
            f"(for example `iconv -f {wide.split()[0]} -t UTF-8`)"
        )
    if b"\x00" in raw:
        raise YamlProblem(f"binary file (contains NUL bytes); a {kind} must be UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _offset_position(raw, exc.start)
        raise YamlProblem(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); a {kind} must be UTF-8 text",
            line,
            column,
        ) from None
    return text.removeprefix("\ufeff")


_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
)


def _wide_encoding(raw: bytes) -> str | None:
    """The UTF-16/UTF-32 flavour of ``raw`` by its byte order mark, or by the NUL bytes that
    ASCII text has in those encodings; ``None`` for anything else."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return name
    head = raw[:4096]
    if len(head) < 4 or b"\x00" not in head:
        return None
    size = len(head) - len(head) % 4

    def nul_share(start: int, step: int) -> float:
        positions = range(start, size, step)
        return sum(1 for i in positions if head[i] == 0) / len(positions)

    # Mostly-ASCII text: in UTF-32 three bytes of four are NUL, in UTF-16 one of two.
    if min(nul_share(2, 4), nul_share(3, 4)) > 0.9 and nul_share(0, 4) < 0.1:
        return "UTF-32 (little-endian)"
    if min(nul_share(0, 4), nul_share(1, 4)) > 0.9 and nul_share(3, 4) < 0.1:
        return "UTF-32 (big-endian)"
    if nul_share(1, 2) > 0.7 and nul_share(0, 2) < 0.1:
        return "UTF-16 (little-endian)"
    if nul_share(0, 2) > 0.7 and nul_share(1, 2) < 0.1:
        return "UTF-16 (big-endian)"
    return None


def _offset_position(data: bytes | str, offset: int) -> Position:
    before = data[:offset]
    newline: Any = b"\n" if isinstance(data, bytes) else "\n"
    line = before.count(newline) + 1
    column = offset - (before.rfind(newline) + 1) + 1
    return line, column


def _event_source(text: str) -> Callable[[], Any]:
    """The parser's next-event function (called directly in the hot loop: no generator)."""
    if C_PARSER:
        return _CParser(text).get_event  # type: ignore[no-any-return]
    from ruamel.yaml import YAML  # pragma: no cover

    events: Iterator[Any] = iter(YAML(typ="safe", pure=True).parse(text))  # pragma: no cover
    return events.__next__  # pragma: no cover


def _syntax_problem(exc: YAMLError, text: str) -> YamlProblem:
    """A parser exception as a YamlProblem with a clear message (tabs named as such)."""
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        line, column = exc.problem_mark.line + 1, exc.problem_mark.column + 1
        lines = text.splitlines()
        here = lines[line - 1] if 0 < line <= len(lines) else ""
        if "\t" in here[:column] or "tab" in (exc.problem or ""):
            tab = here.find("\t") + 1 or column
            return YamlProblem(
                "tab character in indentation; YAML indents with spaces only", line, tab
            )
        detail = exc.problem or "invalid YAML"
        if exc.context:
            detail = f"{detail} ({exc.context})"
        return YamlProblem(f"YAML syntax error: {detail}", line, column)
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        line, column = _offset_position(text, position)
        character = getattr(exc, "character", None)
        what = f" U+{character:04X}" if isinstance(character, int) else ""
        return YamlProblem(
            f"unacceptable character{what}: control characters are not allowed in YAML",
            line,
            column,
        )
    return YamlProblem(f"YAML error: {exc}")


def _resolve_plain(value: str) -> Any:
    """Resolve an untagged plain scalar with the YAML 1.2 core schema (no timestamps)."""
    if value and value[0] not in _NON_STR_START:  # the common case: a word
        return value
    if _NULL.match(value):
        return None
    if value in _BOOL:
        return _BOOL[value]
    if _INT10.match(value):
        return int(value)
    if _INT8.match(value):
        return int(value[2:], 8)
    if _INT16.match(value):
        return int(value[2:], 16)
    if _FLOAT.match(value):
        return float(value)
    if _FLOAT_SPECIAL.match(value):
        return float(value.lower().replace(".", ""))
    return value


def _resolve_tagged(tag: str, value: str) -> Any:
    if tag in ("!", _CORE + "str"):
        return value
    if tag == _CORE + "null" and _NULL.match(value):
        return None
    if tag == _CORE + "bool" and value in _BOOL:
        return _BOOL[value]
    if tag == _CORE + "int" and (_INT10.match(value) or _INT8.match(value) or _INT16.match(value)):
        return _resolve_plain(value)
    if tag == _CORE + "float" and (
        _FLOAT.match(value) or _FLOAT_SPECIAL.match(value) or _INT10.match(value)
    ):
        return float(_resolve_plain(value))
    shown = tag.replace(_CORE, "!!")
    raise YamlProblem(f"YAML tag {shown} is not supported here (value {value!r})")


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = ("container", "mark", "path", "pending_key", "seen", "skip_value")

    def __init__(self, container: dict[str, Any] | list[Any], path: FieldPath, mark: Any) -> None:
        self.container = container
        self.path = path
        self.mark = mark
        self.pending_key: str | None = None
        self.skip_value = False
        self.seen: dict[str, Position] = {}


_DISCARD = object()
# Events are told apart by their exact class: the parser makes no subclasses of them.
_SCALAR_EVENT = ev.ScalarEvent
_ALIAS_EVENT = ev.AliasEvent
_MAPPING_START = ev.MappingStartEvent
_SEQUENCE_START = ev.SequenceStartEvent
_MAPPING_END = ev.MappingEndEvent
_SEQUENCE_END = ev.SequenceEndEvent
_DOCUMENT_START = ev.DocumentStartEvent
_DOCUMENT_END = ev.DocumentEndEvent
_STREAM_END = ev.StreamEndEvent


def parse_documents(text: str, kind: str = "manifest") -> tuple[list[Document], list[YamlProblem]]:
    """All documents of ``text``; a syntax error stops the file and is returned as a problem.

    Problems inside a document (aliases, duplicate keys, unsupported tags, non-finite numbers)
    are attached to that document, and composition goes on so that all of them are reported.
    """
    documents: list[Document] = []
    stack: list[_Frame] = []
    doc: Document | None = None
    total = 0

    def attach(value: Any, mark: Any, is_key_candidate: bool = True) -> None:
        assert doc is not None
        position = (mark.line + 1, mark.column + 1)
        if not stack:
            doc.data = None if value is _DISCARD else value
            doc.line, doc.column = position
            return
        frame = stack[-1]
        container = frame.container
        if isinstance(container, list):
            index = len(container)
            container.append(None if value is _DISCARD else value)
            doc.positions[(*frame.path, index)] = position
            return
        if frame.pending_key is None and not frame.skip_value:
            if value is _DISCARD:  # already reported (an alias or a bad tag as a key)
                frame.skip_value = True
                return
            if not isinstance(value, str) or not is_key_candidate:
                doc.problems.append(YamlProblem("mapping keys must be plain strings", *position))
                frame.skip_value = True
                return
            if value in frame.seen:
                first = frame.seen[value]
                doc.problems.append(
                    YamlProblem(
                        f"duplicate key {value!r} (first defined at line {first[0]}, "
                        f"column {first[1]})",
                        *position,
                        path=(*frame.path, value),
                    )
                )
                frame.skip_value = True
                return
            frame.seen[value] = position
            frame.pending_key = value
            doc.positions[(*frame.path, value)] = position
            return
        if not frame.skip_value and frame.pending_key is not None and value is not _DISCARD:
            container[frame.pending_key] = value
        frame.pending_key = None
        frame.skip_value = False

    def child_path() -> FieldPath:
        if not stack:
            return ()
        frame = stack[-1]
        if type(frame.container) is list:
            return (*frame.path, len(frame.container))
        return (*frame.path, frame.pending_key or "?")

    next_event = _event_source(text)
    try:
        while True:
            # Any: events are told apart by exact class, which mypy does not narrow on.
            event: Any = next_event()
            kind_of_event = type(event)
            if kind_of_event is _SCALAR_EVENT:
                if doc is None:
                    continue
                raw = event.value
                if (
                    event.ctag is None
                    and event.implicit[0]
                    and raw
                    and raw[0] not in _NON_STR_START
                ):
                    attach(raw, event.start_mark)  # a plain word: the common scalar
                    continue
                value = _scalar(event, doc)
                if value is None:
                    doc.has_nulls = True
                attach(
                    value,
                    event.start_mark,
                    is_key_candidate=event.tag is None or event.tag in ("!", _CORE + "str"),
                )
            elif kind_of_event is _MAPPING_END or kind_of_event is _SEQUENCE_END:
                frame = stack.pop()
                attach(frame.container, frame.mark, is_key_candidate=False)
            elif kind_of_event is _MAPPING_START or kind_of_event is _SEQUENCE_START:
                if doc is None:
                    continue
                mark = event.start_mark
                if len(stack) >= MAX_DEPTH:
                    return documents, [
                        YamlProblem(
                            f"nesting deeper than {MAX_DEPTH} levels; a {kind} is never this deep",
                            mark.line + 1,
                            mark.column + 1,
                        )
                    ]
                container: dict[str, Any] | list[Any] = (
                    {} if kind_of_event is _MAPPING_START else []
                )
                if event.ctag is not None and event.tag not in ("!", _CORE + "map", _CORE + "seq"):
                    doc.problems.append(
                        YamlProblem(
                            f"YAML tag {str(event.tag).replace(_CORE, '!!')} is not supported here",
                            mark.line + 1,
                            mark.column + 1,
                        )
                    )
                stack.append(_Frame(container, child_path(), mark))
            elif kind_of_event is _DOCUMENT_START:
                mark = event.start_mark
                doc = Document(data=None, line=mark.line + 1, column=mark.column + 1)
            elif kind_of_event is _DOCUMENT_END:
                if doc is not None:
                    documents.append(doc)
                doc, stack = None, []
            elif kind_of_event is _STREAM_END:
                break
            elif kind_of_event is _ALIAS_EVENT and doc is not None:
                mark = event.start_mark
                doc.problems.append(
                    YamlProblem(
                        f"aliases (*{event.anchor}) are not allowed in a {kind}; "
                        "write the value out",
                        mark.line + 1,
                        mark.column + 1,
                    )
                )
                attach(_DISCARD, mark, is_key_candidate=False)
            if doc is not None and len(doc.problems) > total:
                total = len(doc.problems) + sum(len(d.problems) for d in documents)
                if total >= MAX_PROBLEMS_PER_FILE:
                    return [*documents, doc], [
                        YamlProblem(f"more than {MAX_PROBLEMS_PER_FILE} problems; stopped")
                    ]
    except YAMLError as exc:
        return documents, [_syntax_problem(exc, text)]
    except (ValueError, OverflowError, RecursionError, MemoryError) as exc:
        return documents, [YamlProblem(f"cannot parse YAML: {exc}")]
    return documents, []


def _scalar(event: ev.ScalarEvent, doc: Document) -> Any:
    mark = event.start_mark
    try:
        if event.tag is not None:
            value = _resolve_tagged(event.tag, event.value)
        elif event.implicit[0]:
            value = _resolve_plain(event.value)
        else:
            value = event.value
    except YamlProblem as problem:
        problem.line, problem.column = mark.line + 1, mark.column + 1
        doc.problems.append(problem)
        return _DISCARD
    if isinstance(value, float) and not math.isfinite(value):
        doc.problems.append(
            YamlProblem(f"{event.value} is not a finite number", mark.line + 1, mark.column + 1)
        )
        return _DISCARD
    return value
