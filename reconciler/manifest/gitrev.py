"""Which manifest documents changed since a git revision (``--changed-since REF``).

A run that plans only what a commit changed must still know three things about the rest:
which documents were removed (no longer managed), whether a changed document's ``asset_id`` is
declared again elsewhere, and how many assets are managed in all (the safety threshold weighs a
change against the whole fleet).  All three come from a few git processes, whatever the number
of files: ``git diff --name-only`` and ``git ls-files --others`` name the changed files, one
``git cat-file --batch`` gives their contents at REF, and one ``git grep`` scans every manifest
for its ``asset_id`` and ``metadata.target`` lines without parsing or validating it.  Only the
changed files are parsed (safe YAML) on both sides, and compared per document by ``asset_id``
and a digest of its content: a file of 50 documents where one changed yields one id.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.constants import MANIFEST_SUFFIXES
from reconciler.errors import ReconcilerError
from reconciler.manifest.problems import ManifestError, Problem
from reconciler.yaml_safe import YamlProblem, parse_documents, read_text


class GitRevisionError(ReconcilerError):
    """``--changed-since`` cannot be answered: no git, not a repository, an unknown revision."""


class _GitFailed(GitRevisionError):
    """git ran and answered with a non-zero exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class DocumentKey:
    """What the comparison needs of one document: its id, its target, where it is, and a
    digest of its content (a comment or a reformatting changes nothing)."""

    asset_id: str
    target: str | None
    file: str
    line: int
    digest: str = ""


@dataclass(frozen=True)
class Comparison:
    """The changed files' documents compared by ``asset_id``: the ids to plan (changed or
    added) and the documents removed (present at REF, gone now)."""

    changed: frozenset[str]
    removed: list[DocumentKey]


class Changes:
    """The documents changed since ``ref`` under the run's paths, and the cheap scan of every
    manifest, which runs in the background (100,000 files take git a second to open): a run
    starts its reads of the changed assets at once and :meth:`settle` waits for the scan."""

    def __init__(
        self,
        ref: str,
        files: list[str],
        comparison: Comparison,
        new: list[DocumentKey],
        scan: _Scan,
    ) -> None:
        self.ref = ref
        self.files = files  # changed manifest files that exist now, in path order
        self.changed = comparison.changed  # asset ids to plan
        self.removed = comparison.removed
        self._new = new  # the changed files' documents now
        self._scan = scan
        self._documents: list[DocumentKey] | None = None

    def settle(self) -> None:
        """Wait for the scan; raise :class:`ManifestError` when a changed file's document
        declares an ``asset_id`` another manifest declares too."""
        if self._documents is None:
            scanned = self._scan.others()
            _refuse_duplicates(self._new, scanned, self._scan.roots)
            self._documents = [*scanned, *self._new]

    @property
    def documents(self) -> list[DocumentKey]:
        """Every document now: the changed files' parsed, the others' scanned."""
        self.settle()
        assert self._documents is not None
        return self._documents

    def managed(self, owner_of: Callable[[str | None], str | None]) -> dict[str | None, int]:
        """How many documents each owner (``owner_of(target)``) has, every file counted."""
        counts: dict[str | None, int] = {}
        for document in self.documents:
            owner = owner_of(document.target)
            counts[owner] = counts.get(owner, 0) + 1
        return counts


def compare_documents(old: Iterable[DocumentKey], new: Iterable[DocumentKey]) -> Comparison:
    """``new`` against ``old`` by ``asset_id``: an id whose digest differs or that is new is
    changed; an id of ``old`` that ``new`` lacks is removed (a renamed id is both)."""
    before = {document.asset_id: document for document in old}
    now = {document.asset_id: document.digest for document in new}
    changed = frozenset(
        asset_id
        for asset_id, digest in now.items()
        if asset_id not in before or before[asset_id].digest != digest
    )
    removed = [document for asset_id, document in before.items() if asset_id not in now]
    return Comparison(changed, removed)


def document_keys(text: str, file: str) -> list[DocumentKey]:
    """Each document of ``text`` that declares an ``asset_id``, with its digest; a document
    that does not parse, or has no id, is left out (the load of the file reports it)."""
    documents, _problems = parse_documents(text)
    keys: list[DocumentKey] = []
    for document in documents:
        data = document.data
        metadata = data.get("metadata") if isinstance(data, dict) else None
        asset_id = metadata.get("asset_id") if isinstance(metadata, dict) else None
        if not isinstance(asset_id, str) or not asset_id:
            continue
        assert isinstance(metadata, dict)
        target = metadata.get("target")
        content = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        keys.append(
            DocumentKey(
                asset_id,
                target if isinstance(target, str) else None,
                file,
                document.line,
                hashlib.sha256(content.encode()).hexdigest(),
            )
        )
    return keys


class _Git:
    """git run in the current directory; every failure is a :class:`GitRevisionError`."""

    def __init__(self, ref: str) -> None:
        self.ref = ref

    def run(self, *args: str, stdin: bytes | None = None) -> bytes:
        try:
            done = subprocess.run(
                ["git", *args], input=stdin, capture_output=True, check=False, timeout=600
            )
        except FileNotFoundError:
            raise GitRevisionError(
                f"--changed-since {self.ref}: git is not installed (or not on PATH)"
            ) from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitRevisionError(f"--changed-since {self.ref}: git failed: {exc}") from None
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip().splitlines()
            reason = said[-1] if said else f"exit status {done.returncode}"
            raise _GitFailed(
                f"--changed-since {self.ref}: git {args[0]} failed: {reason}", done.returncode
            )
        return done.stdout

    def top(self) -> Path:
        try:
            out = self.run("rev-parse", "--show-toplevel")
        except _GitFailed:
            raise GitRevisionError(
                f"--changed-since {self.ref}: {Path.cwd()} is not in a git repository"
            ) from None
        return Path(os.fsdecode(out.strip()))

    def commit(self) -> str:
        try:
            out = self.run(
                "rev-parse", "--verify", "--quiet", "--end-of-options", f"{self.ref}^{{commit}}"
            )
        except _GitFailed:
            raise GitRevisionError(
                f"--changed-since {self.ref}: no such revision in this repository "
                "(in CI, fetch enough history: actions/checkout with fetch-depth: 0, or "
                "GIT_DEPTH: 0 in GitLab)"
            ) from None
        return out.decode().strip()


def _names(out: bytes) -> list[str]:
    return [os.fsdecode(name) for name in out.split(b"\0") if name]


class _Roots:
    """The run's paths, and whether a repository file is a manifest of the run (the rules of
    :mod:`reconciler.manifest.discovery`: ``.yaml``/``.yml`` under a folder given, hidden
    files and folders skipped; a file given is one)."""

    def __init__(self, paths: Sequence[str | Path], top: Path) -> None:
        self.top = top.resolve()
        here = os.path.realpath(os.getcwd())  # git names files from the resolved top
        self.absolute = [os.path.normpath(os.path.join(here, path)) for path in paths]
        # Repository-relative, with "/" (as git names files): a string test per file, since
        # the scan asks about every manifest of the repository.
        self._files: dict[str, int] = {}  # a file given -> its place among the paths
        self._prefixes: list[str] = []
        for path in self.absolute:
            relative = Path(os.path.relpath(path, self.top)).as_posix()
            if os.path.isdir(path):
                self._prefixes.append("" if relative == "." else relative + "/")
            else:
                self._files.setdefault(relative, len(self._prefixes))
                self._prefixes.append("\0")  # a file takes a place, and holds no folder
        self.missing = [str(path) for path in paths if not os.path.exists(path)]

    def place(self, name: str) -> tuple[int, str]:
        """Where a full load would read the file: the first path given that holds it."""
        if name in self._files:
            return self._files[name], name
        for index, prefix in enumerate(self._prefixes):
            if name.startswith(prefix):
                return index, name
        return len(self._prefixes), name

    def pathspecs(self) -> list[str]:
        return self.absolute

    def shown(self, name: str) -> str:
        """A repository-relative name as the run shows files: relative to where it runs."""
        return os.path.relpath(self.top / name)

    def covers(self, name: str) -> bool:
        if name in self._files:
            return True
        if not name.endswith(MANIFEST_SUFFIXES):
            return False
        for prefix in self._prefixes:
            if name.startswith(prefix):
                rest = name[len(prefix) :]
                if not rest.startswith(".") and "/." not in rest:
                    return True
        return False


def changed_documents(paths: Sequence[str | Path], ref: str) -> Changes:
    """The documents under ``paths`` that differ between revision ``ref`` and the working tree
    (uncommitted edits and untracked files count), and an id scan of every manifest.

    Raises :class:`GitRevisionError` without git, outside a repository or for an unknown
    ``ref``; :meth:`Changes.settle` raises :class:`ManifestError` when a changed document's
    ``asset_id`` is declared again in another manifest.
    """
    git = _Git(ref)
    top = git.top()
    commit = git.commit()
    roots = _Roots(paths, top)
    specs = roots.pathspecs()
    changed_names: set[str] = set()
    scan = _Scan(git, roots, changed_names)  # in the background, from now on
    names = _names(git.run("diff", "--name-only", "-z", "--no-renames", commit, "--", *specs))
    names += _names(
        git.run("ls-files", "-z", "--full-name", "--others", "--exclude-standard", "--", *specs)
    )
    changed_names.update(name for name in names if roots.covers(name))
    old_texts = _old_texts(git, commit, sorted(changed_names))
    old: list[DocumentKey] = []
    new: list[DocumentKey] = []
    files: list[str] = list(roots.missing)  # the load reports a path that does not exist
    for name in sorted(changed_names, key=roots.place):
        shown = roots.shown(name)
        old += document_keys(old_texts.get(name, ""), shown)
        path = roots.top / name
        if path.exists():
            files.append(shown)
            with contextlib.suppress(YamlProblem):  # the load of the file reports it
                new += document_keys(read_text(path), shown)
    return Changes(ref, files, compare_documents(old, new), new, scan)


class _Scan:
    """:func:`_grep` and :func:`_scanned` on a thread of their own: the documents of every
    manifest but the changed files (whose names arrive while it runs)."""

    def __init__(self, git: _Git, roots: _Roots, changed: set[str]) -> None:
        self.roots = roots
        self._changed = changed
        self._found: list[DocumentKey] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(git,), name="manifest-id-scan", daemon=True
        )
        self._thread.start()

    def _run(self, git: _Git) -> None:
        try:
            self._found = _scanned(_grep(git, self.roots.pathspecs()), self.roots)
        except BaseException as exc:  # handed to the thread that waits for the scan
            self._error = exc

    def others(self) -> list[DocumentKey]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        changed = self._changed
        return [document for document in self._found if document.file not in changed]


def _old_texts(git: _Git, commit: str, names: Sequence[str]) -> dict[str, str]:
    """Each file's text at ``commit`` (one ``git cat-file --batch``); files new since are
    absent."""
    if not names:
        return {}
    request = b"".join(f"{commit}:{name}\n".encode() for name in names)
    out = git.run("cat-file", "--batch", stdin=request)
    texts: dict[str, str] = {}
    at = 0
    for name in names:
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if len(header) != 3 or header[1] != b"blob":  # "<name> missing": added since
            continue
        size = int(header[2])
        texts[name] = out[at : at + size].decode("utf-8", errors="replace")
        at += size + 1
    return texts


# What the scan asks git for: fixed strings (a regular expression costs git three times as
# much over 100,000 files); the lines are then matched here, a separator or a key with its
# indentation and value.
_SCAN = ("asset_id:", "target:", "---")


def _grep(git: _Git, specs: Sequence[str]) -> bytes:
    """Every ``asset_id``, ``target`` and separator line of every manifest under ``specs``
    (one ``git grep`` over tracked and untracked files)."""
    try:
        return git.run(
            "grep",
            "-z",
            "-n",
            "-I",
            "--untracked",
            "--full-name",
            "-F",
            *(f"-e{pattern}" for pattern in _SCAN),
            "--",
            *specs,
        )
    except _GitFailed as failed:
        if failed.status == 1:  # no line matched
            return b""
        raise


_LINE = re.compile(r"([^\0\n]*)\0([0-9]+)\0([^\n]*)")


def _scanned(out: bytes, roots: _Roots) -> list[DocumentKey]:
    """The documents of :func:`_grep`'s lines, by their ``asset_id`` and ``metadata.target``
    lines (a ``target:`` at the indentation of the ``asset_id:`` before it): cheap, and good
    enough to count the managed assets and find an id declared twice; flow-style metadata is
    not seen.  Files are named relative to the repository.  One pass, few calls per line:
    100,000 manifests give 100,000 lines or more."""
    documents: list[DocumentKey] = []
    file = ""
    covered = False
    asset_id: str | None = None  # the open document's
    target: str | None = None
    line_number = indent = 0
    for name, number, text in _LINE.findall(out.decode("utf-8", errors="replace")):
        if name != file:
            if asset_id is not None:
                documents.append(DocumentKey(asset_id, target, file, line_number))
            asset_id = None
            file = name
            covered = roots.covers(name)
        if not covered:
            continue
        key = text.lstrip()
        if text.startswith("---"):
            if asset_id is not None:
                documents.append(DocumentKey(asset_id, target, file, line_number))
            asset_id = None
        elif key.startswith("asset_id:"):
            if asset_id is not None:  # a second id without a separator: count it too
                documents.append(DocumentKey(asset_id, target, file, line_number))
            asset_id, target = _value(key[9:]), None
            line_number, indent = int(number), len(text) - len(key)
        elif (
            key.startswith("target:")
            and asset_id is not None
            and target is None
            and len(text) - len(key) == indent
        ):
            target = _value(key[7:]) or None
    if asset_id is not None:
        documents.append(DocumentKey(asset_id, target, file, line_number))
    return documents


def _value(text: str) -> str:
    """A scalar written after a key: without a comment, and unquoted."""
    return _unquote(text.split(" #", 1)[0].strip())


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _refuse_duplicates(
    changed: Sequence[DocumentKey], others: Sequence[DocumentKey], roots: _Roots
) -> None:
    """A changed file's document whose ``asset_id`` another manifest declares too (``others``
    name their files relative to the repository)."""
    wanted = {document.asset_id for document in changed}
    elsewhere: Mapping[str, DocumentKey] = {
        doc.asset_id: doc for doc in others if doc.asset_id in wanted
    }
    problems = [
        Problem(
            document.file,
            document.line,
            1,
            "metadata.asset_id",
            f"asset_id {document.asset_id!r} is declared twice: here and at "
            f"{roots.shown(elsewhere[document.asset_id].file)}:"
            f"{elsewhere[document.asset_id].line}; "
            "each asset may have one manifest",
        )
        for document in changed
        if document.asset_id in elsewhere
    ]
    if problems:
        raise ManifestError(problems)
