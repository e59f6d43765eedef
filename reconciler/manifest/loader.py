"""Load the manifests of a run: every file valid, or every problem of all files at once.

``load_manifests`` either returns every manifest under the given paths, valid, or raises one
:class:`~reconciler.manifest.problems.ManifestError` whose ``problems`` name
``file:line:column``, the field path and what is allowed, for all files at once (a user fixes a
batch, not one error per run).  Which files: :mod:`reconciler.manifest.discovery`; safe YAML:
:mod:`reconciler.yaml_safe`; many files on many cores:
:mod:`reconciler.manifest.parallel`; message wording: :mod:`reconciler.manifest.explain`.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reconciler.constants import DEFAULT_PATHS
from reconciler.fieldpath import FieldPath, format_path
from reconciler.manifest import parallel
from reconciler.manifest.discovery import manifest_entries
from reconciler.manifest.problems import ManifestError, Problem, summary
from reconciler.yaml_safe import (
    Document,
    Position,
    YamlProblem,
    parse_documents,
    read_text,
)

if TYPE_CHECKING:
    from reconciler.manifest.schema import Manifest

__all__ = [
    "LoadedManifest",
    "ManifestError",
    "Problem",
    "discover",
    "load_manifests",
    "summary",
]


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
    def app_user_id(self) -> str | None:
        return self.manifest.metadata.app_user_id

    @property
    def target(self) -> str | None:
        return self.manifest.metadata.target

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.manifest.metadata.labels or {})

    @property
    def ignore(self) -> tuple[str, ...]:
        """``metadata.ignore``: the fields of this asset someone else owns."""
        return tuple(self.manifest.metadata.ignore)

    @property
    def source(self) -> str:
        """``manifests/voice.yaml:3:1``: the document, for messages."""
        return f"{self.file}:{self.line}:{self.column}"

    def position(self, path: FieldPath) -> Position | None:
        """Line and column of a field under ``spec`` (e.g. ``("tags", 2)``), if written."""
        return self.positions.get(("spec", *path))

    @property
    def asset_id_position(self) -> Position:
        return self.positions.get(("metadata", "asset_id"), (self.line, self.column))

    def declared(self) -> Declared:
        """The plain-data view of this manifest."""
        return Declared(
            asset_id=self.asset_id,
            app_user_id=self.app_user_id,
            target=self.target,
            labels=self.labels,
            desired=self.desired,
            file=str(self.file),
            line=self.line,
            column=self.column,
            asset_id_position=self.asset_id_position,
            ignore=self.ignore,
        )


@dataclass(frozen=True, slots=True)
class Declared:
    """A valid manifest as plain data: what a run needs of it, without the validated model and
    the positions of every field.  It crosses processes at a seventh of the cost of a
    :class:`LoadedManifest` (no model to rebuild), so worker processes can validate."""

    asset_id: str
    app_user_id: str | None
    target: str | None
    labels: dict[str, str]
    desired: dict[str, Any]
    file: str
    line: int
    column: int
    asset_id_position: Position
    ignore: tuple[str, ...] = ()  # metadata.ignore

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ManifestLike(Protocol):
    """What duplicate detection reads of a valid manifest (either kind)."""

    @property
    def asset_id(self) -> str: ...
    @property
    def file(self) -> Any: ...
    @property
    def asset_id_position(self) -> Position: ...


SYSTEM_PROPERTIES_NOTE = (
    "system_properties: the service may refuse changes to system properties for accounts that "
    "are not administrators (the API reference: system properties cannot be modified by common "
    "users); only the keys named here are changed, KEY: null deletes one"
)


def notes(loaded: LoadedManifest) -> list[str]:
    """Advice about a valid manifest (``validate -v``): things that are allowed but may not work."""
    out: list[str] = []
    if "system_properties" in loaded.desired:
        line, column = loaded.position(("system_properties",)) or (loaded.line, loaded.column)
        out.append(f"{loaded.file}:{line}:{column}: note: {SYSTEM_PROPERTIES_NOTE}")
    return out


def discover(paths: Sequence[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Manifest files under ``paths``: files as given, directories searched recursively.

    Directories yield their manifest files
    (:func:`~reconciler.manifest.discovery.manifest_entries`); the same file reached twice is
    loaded once.
    """
    names, problems = discover_names(paths)
    return [Path(name) for name in names], problems


def discover_names(paths: Sequence[str | Path]) -> tuple[list[str], list[Problem]]:
    """:func:`discover` as path strings (what a streamed load hands to its workers)."""
    found: list[str] = []
    problems: list[Problem] = []
    seen: set[object] = set()

    def add(path: str, key: object = None) -> None:
        # The file's identity: from the folder's listing, or one stat instead of resolve()'s
        # walk over every path component, which dominated discovery of 10,000 manifests.
        if key is None:
            try:
                info = os.stat(path)
                key = (info.st_dev, info.st_ino)
            except OSError:  # a dangling link: reported when it is read
                key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            found.append(path)

    for given in paths:
        root = Path(given)
        if root.is_dir():
            before = len(found)
            for path, key in manifest_entries(root):
                add(path, key)
            if len(found) == before:
                problems.append(_path_problem(root, "a folder with no .yaml or .yml files in it"))
        elif root.exists():
            add(str(root))
        else:
            problems.append(_path_problem(root, _missing(root)))
    return found, problems


def _path_problem(root: Path, message: str) -> Problem:
    return Problem(str(root), None, None, "", message, about_path=True)


def _missing(root: Path) -> str:
    """What to say of a path that does not exist; ``manifests`` is the commands' default, which
    a user who never named it may not know."""
    if str(root) in DEFAULT_PATHS:
        return (
            f"no such folder; {root}/ is only the default path when none is given: name the "
            "files or folders that hold your manifests (e.g. reconciler plan path/to/manifests)"
        )
    return "no such file or folder"


def load_manifests(paths: Sequence[str | Path]) -> list[LoadedManifest]:
    """Every manifest under ``paths``, validated; raises :class:`ManifestError` otherwise.

    The cyclic garbage collector is paused while loading: loading allocates millions of
    containers and no cycles, and the collections it triggered scanned the growing heap again
    and again (a third of the load's CPU for 10,000 files).  After a large load (at least
    ``parallel.PARALLEL_MIN_FILES`` files) everything alive is moved to the collector's permanent
    generation (``gc.freeze``): the manifests live for the rest of the run, and every later
    full collection would otherwise scan them again (that doubled the CPU of the work after
    loading).  Frozen objects are still freed when their last reference goes.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        loaded = _load(paths)
        if len(loaded) >= parallel.PARALLEL_MIN_FILES:
            gc.freeze()
        return loaded
    finally:
        if enabled:
            gc.enable()


def _load(paths: Sequence[str | Path]) -> list[LoadedManifest]:
    files, problems = discover(paths)
    loaded: list[LoadedManifest] = []
    for file_problems, manifests in parallel.load_in_order(files, _parse_file, _finish):
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
# as (data, line, column, positions, has_nulls).  Plain data, so that it crosses processes
# cheaply.
ParsedDocument = tuple[Any, int, int, dict[FieldPath, Position], bool]
ParsedFile = tuple[list[Problem], list[ParsedDocument]]
# One loaded file: all its problems in order of position, and its valid manifests.
LoadedFile = tuple[list[Problem], list[LoadedManifest]]


def _parse_file(path: Path) -> ParsedFile:
    problems: list[Problem] = []
    documents = _read_documents(path, problems)
    return problems, [(d.data, d.line, d.column, d.positions, d.has_nulls) for d in documents]


def _finish(path: Path, parsed: ParsedFile) -> LoadedFile:
    """Validate the documents of one parsed file (always in this process)."""
    file_problems, documents = parsed
    manifests: list[LoadedManifest] = []
    for data, line, column, positions, has_nulls in documents:
        document = Document(data, line, column, positions, has_nulls=has_nulls)
        manifest = _validate(path, document, file_problems)
        if manifest is not None:
            manifests.append(manifest)
    return sorted(file_problems, key=_problem_order), manifests


def problems_in_text(text: str, name: str) -> list[Problem]:
    """What ``validate`` would report for a file ``name`` holding ``text`` (for writers that
    must never write a manifest the loader rejects)."""
    problems: list[Problem] = []
    documents, syntax = parse_documents(text)
    problems += [Problem(name, p.line, p.column, "", p.message) for p in syntax]
    loaded: list[LoadedManifest] = []
    for document in documents:
        if document.problems:
            problems += [
                Problem(name, p.line, p.column, format_path(p.path), p.message)
                for p in document.problems
            ]
        elif document.data is not None:
            manifest = _validate(Path(name), document, problems)
            if manifest is not None:
                loaded.append(manifest)
    return problems + _duplicate_ids(loaded)


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
    # The models (pydantic) are imported by the first validation, not with this module: the
    # process of a large plan only receives plain data from its workers and never needs them.
    from pydantic import ValidationError

    from reconciler.manifest.explain import explain, kind_of
    from reconciler.manifest.schema import NULL_MESSAGE, Manifest

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
                f"spec (got {kind_of(data)})",
            )
        )
        return None
    nulls: list[FieldPath] = []
    if document.has_nulls:
        data = _without_nulls(data, (), nulls)
    for loc in nulls:
        problems.append(Problem(name, *at(loc), format_path(loc), NULL_MESSAGE))
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc, message = explain(error)
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


# The one place where null means something: ``system_properties: {KEY: null}`` deletes KEY.
NULL_ALLOWED_UNDER: FieldPath = ("spec", "system_properties")


def _without_nulls(value: Any, path: FieldPath, nulls: list[FieldPath]) -> Any:
    """A copy of ``value`` without mapping entries whose value is null (each recorded)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None and path == NULL_ALLOWED_UNDER:
                out[key] = None
            elif item is None:
                nulls.append((*path, key))
            else:
                out[key] = _without_nulls(item, (*path, key), nulls)
        return out
    if isinstance(value, list):
        return [_without_nulls(item, (*path, index), nulls) for index, item in enumerate(value)]
    return value


def _duplicate_ids(loaded: Sequence[LoadedManifest]) -> list[Problem]:
    ids = DuplicateIds()
    return [problem for item in loaded if (problem := ids.check(item)) is not None]


class DuplicateIds:
    """Each ``asset_id`` may have one manifest: the problem of every later one, file order.

    Only where each id was first declared is kept, not the manifest, so that a load streamed
    chunk by chunk does not hold every manifest."""

    def __init__(self) -> None:
        self._first: dict[str, str] = {}  # asset id -> file:line:column of its manifest

    def check(self, item: ManifestLike) -> Problem | None:
        line, column = item.asset_id_position
        here = f"{item.file}:{line}:{column}"
        first = self._first.setdefault(item.asset_id, here)
        if first is here:
            return None
        return Problem(
            str(item.file),
            line,
            column,
            "metadata.asset_id",
            f"asset_id {item.asset_id!r} is declared twice: here and at {first}; "
            "each asset may have one manifest",
        )


# --- a load streamed to plain data (manifest.background) -----------------------------------

# One file loaded to plain data: its problems in order of position, and its valid manifests.
DeclaredFile = tuple[list[Problem], list[Declared]]


def declared_file(path: Path) -> DeclaredFile:
    """Parse and validate one file, keeping plain data only (see :class:`Declared`)."""
    problems, manifests = _finish(path, _parse_file(path))
    return problems, [item.declared() for item in manifests]


def declared_chunk(names: list[str]) -> list[DeclaredFile]:
    """A worker's share of a streamed load: parse and validate, return plain data."""
    return [declared_file(Path(name)) for name in names]
