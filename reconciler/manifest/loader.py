"""Find manifest files, parse them safely, validate them, and report every problem of a run.

``load_manifests`` either returns every manifest under the given paths, valid, or raises one
:class:`ManifestError` whose ``problems`` name ``file:line:column``, the field path and what is
allowed, for all files at once (a user fixes a batch, not one error per run).

Reading and parsing is most of a plan's CPU before its first request, so with many files
(:data:`PARALLEL_MIN_FILES`) it runs on every available core: worker processes (forked, so they
start at once) parse chunks of files and return plain data, and this process validates every
document itself, in file order, so problems, their order and duplicate detection are exactly
those of a serial load.
"""

from __future__ import annotations

import difflib
import gc
import multiprocessing
import os
import types
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from reconciler.errors import ReconcilerError
from reconciler.fieldpath import FieldPath, format_path
from reconciler.manifest.discovery import manifest_files
from reconciler.manifest.schema import NULL_MESSAGE, Manifest
from reconciler.manifest.yaml_safe import (
    Document,
    Position,
    YamlProblem,
    parse_documents,
    read_text,
)

PARALLEL_MIN_FILES = 500  # below this, starting worker processes costs more than it saves
CHUNK_FILES = 100  # files per unit of work handed to a worker


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the manifests, rendered ``file:line:column: path: message``."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestError(ReconcilerError):
    """Every problem found in one load of the manifests."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{summary(self.problems)}\n{lines}")


def summary(problems: Sequence[Problem]) -> str:
    """``3 problems in 2 files.``"""
    files = len({problem.file for problem in problems})
    noun = "problem" if len(problems) == 1 else "problems"
    return f"{len(problems)} {noun} in {files} file{'' if files == 1 else 's'}."


@dataclass(frozen=True)
class LoadedManifest:
    """A valid manifest, where it came from, and the spec as the data the engine diffs."""

    manifest: Manifest
    file: Path
    line: int
    column: int
    # The spec as JSON data with only the keys written in the YAML: present = managed.
    desired: dict[str, Any]
    positions: Mapping[FieldPath, Position] = field(default_factory=dict, repr=False)

    @property
    def asset_id(self) -> str:
        return self.manifest.metadata.asset_id

    @property
    def source(self) -> str:
        """``manifests/voice.yaml:3:1``: the document, for messages."""
        return f"{self.file}:{self.line}:{self.column}"

    def position(self, path: FieldPath) -> Position | None:
        """Line and column of a field under ``spec`` (e.g. ``("tags", 2)``), if written."""
        return self.positions.get(("spec", *path))


def discover(paths: Sequence[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Manifest files under ``paths``: files as given, directories searched recursively.

    Directories yield their manifest files (:func:`~reconciler.manifest.discovery.manifest_files`);
    the same file reached twice is loaded once.
    """
    found: list[Path] = []
    problems: list[Problem] = []
    seen: set[object] = set()

    def add(path: Path) -> None:
        # The file's identity: one stat instead of resolve()'s walk over every path component,
        # which dominated discovery of 10,000 manifests.
        try:
            info = path.stat()
            key: object = (info.st_dev, info.st_ino)
        except OSError:  # a dangling link: reported when it is read
            key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(path)

    for given in paths:
        root = Path(given)
        if root.is_dir():
            before = len(found)
            for path in manifest_files(root):
                add(path)
            if len(found) == before:
                problems.append(Problem(str(root), None, None, "", "no .yaml or .yml files found"))
        elif root.exists():
            add(root)
        else:
            problems.append(Problem(str(root), None, None, "", "no such file or directory"))
    return found, problems


def load_manifests(paths: Sequence[str | Path]) -> list[LoadedManifest]:
    """Every manifest under ``paths``, validated; raises :class:`ManifestError` otherwise.

    The cyclic garbage collector is paused while loading: loading allocates millions of
    containers and no cycles, and the collections it triggered scanned the growing heap again
    and again (a third of the load's CPU for 10,000 files).  After a large load (at least
    :data:`PARALLEL_MIN_FILES` files) everything alive is moved to the collector's permanent
    generation (``gc.freeze``): the manifests live for the rest of the run, and every later
    full collection would otherwise scan them again (that doubled the CPU of the work after
    loading).  Frozen objects are still freed when their last reference goes.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        loaded = _load(paths)
        if len(loaded) >= PARALLEL_MIN_FILES:
            gc.freeze()
        return loaded
    finally:
        if enabled:
            gc.enable()


def _load(paths: Sequence[str | Path]) -> list[LoadedManifest]:
    files, problems = discover(paths)
    loaded: list[LoadedManifest] = []
    for file_problems, manifests in _load_files(files):
        problems.extend(file_problems)
        loaded.extend(manifests)
    problems.extend(_duplicate_ids(loaded))
    if problems:
        raise ManifestError(problems)
    return loaded


def _problem_order(problem: Problem) -> tuple[bool, int, int]:
    """By position; problems about the file as a whole (no position) last."""
    return (problem.line is None, problem.line or 0, problem.column or 0)


# One parsed file: its read and YAML problems, and each non-empty document without YAML problems
# as (data, line, column, positions).  Plain data, so that it crosses processes cheaply.
ParsedDocument = tuple[Any, int, int, dict[FieldPath, Position]]
ParsedFile = tuple[list[Problem], list[ParsedDocument]]
# One loaded file: all its problems in order of position, and its valid manifests.
LoadedFile = tuple[list[Problem], list[LoadedManifest]]


def _parse_file(path: Path) -> ParsedFile:
    problems: list[Problem] = []
    documents = _read_documents(path, problems)
    return problems, [(d.data, d.line, d.column, d.positions) for d in documents]


def _parse_chunk(names: list[str]) -> list[ParsedFile]:
    """The work of one worker call (names, not Paths: they pickle at a fraction of the cost)."""
    return [_parse_file(Path(name)) for name in names]


def _finish(path: Path, parsed: ParsedFile) -> LoadedFile:
    """Validate the documents of one parsed file (always in this process)."""
    file_problems, documents = parsed
    manifests: list[LoadedManifest] = []
    for data, line, column, positions in documents:
        manifest = _validate(path, Document(data, line, column, positions), file_problems)
        if manifest is not None:
            manifests.append(manifest)
    return sorted(file_problems, key=_problem_order), manifests


def _workers() -> int:
    """Worker processes to start: one per available core beyond this process's own."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity
        cores = os.cpu_count() or 1
    return cores - 1


def _load_files(files: Sequence[Path]) -> Iterator[LoadedFile]:
    """Each file loaded, in order; parsed on several cores when there are many files."""
    workers = _workers()
    if (
        len(files) < PARALLEL_MIN_FILES
        or workers < 1
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return (_finish(path, _parse_file(path)) for path in files)
    return iter(_load_in_parallel(files, workers))


def _load_in_parallel(files: Sequence[Path], workers: int) -> list[LoadedFile]:
    """Chunks go to the workers from the front; this process works from both ends.

    It validates each chunk a worker has finished, in order, and while none is ready it takes
    the last chunk not yet handed to a worker and parses it itself (a chunk it can still cancel
    is not in a worker's hands).  So validation never waits for the end of parsing and no
    process sits idle.  A pool that breaks (a worker killed) costs speed, not results: its
    chunks are parsed here.
    """
    chunks = [files[i : i + CHUNK_FILES] for i in range(0, len(files), CHUNK_FILES)]
    results: list[list[LoadedFile]] = [[] for _ in chunks]

    def finish(index: int, parsed: list[ParsedFile]) -> None:
        results[index] = [_finish(p, one) for p, one in zip(chunks[index], parsed, strict=True)]

    def collect(future: Future[list[ParsedFile]], index: int) -> None:
        try:
            parsed = future.result()
        except BrokenProcessPool:
            parsed = [_parse_file(path) for path in chunks[index]]
        finish(index, parsed)

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        # Workers are forked at the first submit and inherit the disabled garbage collector
        # (see load_manifests), which would otherwise copy every inherited page it scans.
        futures: list[Future[list[ParsedFile]]] = [
            pool.submit(_parse_chunk, [str(path) for path in chunk]) for chunk in chunks
        ]
        front, back = 0, len(chunks) - 1
        while front <= back:
            if futures[front].done():
                collect(futures[front], front)
                front += 1
            elif futures[back].cancel():
                finish(back, [_parse_file(path) for path in chunks[back]])
                back -= 1
            else:  # every chunk left is with a worker
                collect(futures[front], front)
                front += 1
    return [loaded for chunk in results for loaded in chunk]


def _read_documents(path: Path, problems: list[Problem]) -> list[Document]:
    name = str(path)
    try:
        text = read_text(path)
    except YamlProblem as exc:
        problems.append(Problem(name, exc.line, exc.column, "", exc.message))
        return []
    documents, syntax = parse_documents(text)
    for problem in syntax:
        problems.append(Problem(name, problem.line, problem.column, "", problem.message))
    valid = []
    for document in documents:
        if document.problems:
            problems.extend(
                Problem(name, p.line, p.column, format_path(p.path), p.message)
                for p in document.problems
            )
        elif document.data is not None:  # empty documents are skipped
            valid.append(document)
    return valid


def _validate(path: Path, document: Document, problems: list[Problem]) -> LoadedManifest | None:
    name = str(path)

    def at(loc: FieldPath) -> Position:
        for end in range(len(loc), 0, -1):
            position = document.positions.get(loc[:end])
            if position is not None:
                return position
        return document.line, document.column

    data = document.data
    if not isinstance(data, dict):
        problems.append(
            Problem(
                name,
                document.line,
                document.column,
                "",
                "a manifest document must be a mapping with apiVersion, kind, metadata and "
                f"spec (got {_kind_of(data)})",
            )
        )
        return None
    nulls: list[FieldPath] = []
    data = _without_nulls(data, (), nulls)
    for loc in nulls:
        problems.append(Problem(name, *at(loc), format_path(loc), NULL_MESSAGE))
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc, message = _explain(error)
            if error["type"] == "missing" and loc in nulls:
                continue  # already reported as a null
            problems.append(Problem(name, *at(loc), format_path(loc), message))
        return None
    if nulls:
        return None
    return LoadedManifest(
        manifest=manifest,
        file=path,
        line=document.line,
        column=document.column,
        desired=manifest.spec.model_dump(mode="json", exclude_unset=True),
        positions=document.positions,
    )


def _without_nulls(value: Any, path: FieldPath, nulls: list[FieldPath]) -> Any:
    """A copy of ``value`` without mapping entries whose value is null (each recorded)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                nulls.append((*path, key))
            else:
                out[key] = _without_nulls(item, (*path, key), nulls)
        return out
    if isinstance(value, list):
        return [_without_nulls(item, (*path, index), nulls) for index, item in enumerate(value)]
    return value


def _duplicate_ids(loaded: Sequence[LoadedManifest]) -> list[Problem]:
    first: dict[str, LoadedManifest] = {}
    problems = []
    for item in loaded:
        asset_id = item.asset_id
        if asset_id in first:
            other = first[asset_id]
            line, column = item.positions.get(("metadata", "asset_id"), (item.line, item.column))
            where = other.positions.get(("metadata", "asset_id"), (other.line, other.column))
            problems.append(
                Problem(
                    str(item.file),
                    line,
                    column,
                    "metadata.asset_id",
                    f"asset_id {asset_id!r} is declared twice: here and at "
                    f"{other.file}:{where[0]}:{where[1]}; each asset may have one manifest",
                )
            )
        else:
            first[asset_id] = item
    return problems


# --- turning pydantic errors into messages a user can act on -------------------------------


def _explain(error: ErrorDetails) -> tuple[FieldPath, str]:
    """The data path of an error and a message saying what is allowed."""
    loc: FieldPath = tuple(error["loc"])
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        return loc, f"invalid key: {_strip_input(error['msg'])} (got {_show(value)})"
    if "at" in ctx:  # a whole-spec rule that knows which field it is about
        loc = (*loc, *ctx["at"])
    if kind == "extra_forbidden":
        return loc, _unknown_field(loc)
    if kind == "missing":
        return loc, "required field is missing"
    if kind in ("too_long", "too_short"):
        bound = "at most" if kind == "too_long" else "at least"
        limit = ctx.get("max_length" if kind == "too_long" else "min_length")
        items = "item" if limit == 1 else "items"
        return loc, f"List should have {bound} {limit} {items} (got {ctx.get('actual_length')})"
    if kind in ("string_too_long", "string_too_short"):
        return (
            loc,
            f"{_strip_input(error['msg'])} (got {len(value) if isinstance(value, str) else '?'})",
        )
    if kind == "literal_error":
        return loc, f"{error['msg']} (got {_show(value)})"
    if kind.endswith("_type") or kind in ("int_from_float", "bool_parsing", "int_parsing"):
        hint = ""
        if kind == "string_type" and isinstance(value, (int, float, bool)):
            hint = "; quote it to make it a string"
        return loc, f"{error['msg']} (got {_show(value)}{hint})"
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        return loc, f"{error['msg']} (got {_show(value)})"
    return loc, _strip_input(error["msg"])


def _strip_input(message: str) -> str:
    return message.replace(" after validation", "").removeprefix("Value error, ")


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return _show(value)


def _unknown_field(loc: FieldPath) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    allowed = list(model.model_fields) if model is not None else []
    message = f"unknown field {key!r}"
    matches = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if matches:
        return f"{message}; did you mean {matches[0]!r}?"
    if allowed:
        return f"{message}; allowed: {', '.join(allowed)}"
    return message


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``| None`` from an annotation."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [arg for arg in get_args(tp) if arg is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(loc: FieldPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` inside a manifest."""
    tp: Any = Manifest
    for part in loc:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if origin in (list, dict):
            tp = get_args(tp)[-1]
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            info = tp.model_fields.get(part)
            if info is None:
                return None
            tp = info.annotation
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None
