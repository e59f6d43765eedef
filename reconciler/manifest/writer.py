"""Write manifests as YAML, and update existing ones in place.

People comment and arrange their manifests; a tool that rewrites them from scratch loses that and
makes every re-import a noisy diff.  Files are therefore read and written with ruamel.yaml's
round-trip mode: comments, key order, quoting and flow/block style survive, and the indentation
the file already uses is detected and kept.  Only the values that actually differ are replaced.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

from reconciler import files
from reconciler.errors import ReconcilerError
from reconciler.fieldpath import FieldPath
from reconciler.manifest import discovery
from reconciler.manifest.schema import API_VERSION, KIND

# Decides whether a manifest value and an imported one mean the same thing (set-like lists,
# 1 vs 1.0, ...); the writer keeps the manifest's own spelling when they do.
Equal = Callable[[FieldPath, Any, Any], bool]
# Whether the list at a path is a set (its order carries no meaning).
Unordered = Callable[[FieldPath], bool]


class ManifestWriteError(ReconcilerError):
    """A manifest could not be read back or written."""


def plain_equal(path: FieldPath, old: Any, new: Any) -> bool:
    """Default comparison: Python equality (ruamel's containers compare like dict and list)."""
    return bool(old == new)


def never_unordered(path: FieldPath) -> bool:
    return False


@dataclass
class Layout:
    """How a file indents: mapping indent, sequence indent and the dash offset inside it."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2
    explicit_start: bool = False

    @classmethod
    def guess(cls, text: str) -> Layout:
        """Read the indentation a file already uses, so a rewrite does not reindent it."""
        layout = cls(explicit_start=text.lstrip().startswith("---"))
        parent_indent: int | None = None
        found_mapping = found_sequence = False
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#") or stripped.startswith("---"):
                continue
            indent = len(line) - len(line.lstrip(" "))
            if stripped.startswith("- ") and parent_indent is not None and not found_sequence:
                offset = indent - parent_indent
                content = indent + 2 + len(stripped[2:]) - len(stripped[2:].lstrip(" "))
                layout.offset = max(offset, 0)
                layout.sequence = max(content - parent_indent, layout.offset + 2)
                found_sequence = True
            elif (
                parent_indent is not None
                and indent > parent_indent
                and not found_mapping
                and not stripped.startswith("- ")
            ):
                layout.mapping = indent - parent_indent
                found_mapping = True
            if found_mapping and found_sequence:
                break
            parent_indent = indent if re.match(r"^[^#]*:\s*(#.*)?$", stripped) else None
        if not found_sequence:
            layout.sequence = layout.mapping + 2
            layout.offset = layout.mapping
        return layout


def _yaml(layout: Layout) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long descriptions
    yaml.indent(mapping=layout.mapping, sequence=layout.sequence, offset=layout.offset)
    yaml.explicit_start = layout.explicit_start
    return yaml


@dataclass
class ManifestFile:
    """One YAML file with one or more documents, loaded for round-trip editing."""

    path: Path
    documents: list[Any]
    layout: Layout = field(default_factory=Layout)

    @classmethod
    def load(cls, path: Path) -> ManifestFile:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ManifestWriteError(f"{path}: cannot read: {exc.strerror}") from exc
        layout = Layout.guess(text)
        try:
            documents = [d for d in _yaml(layout).load_all(text) if d is not None]
        except YAMLError as exc:
            raise ManifestWriteError(f"{path}: not valid YAML: {exc}") from exc
        return cls(path=path, documents=documents, layout=layout)

    def dumps(self) -> str:
        buffer = io.StringIO()
        yaml = _yaml(self.layout)
        if len(self.documents) == 1:
            yaml.dump(self.documents[0], buffer)
        else:
            yaml.dump_all(self.documents, buffer)
        return buffer.getvalue()

    def save(self) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half of each."""
        write_atomic(self.path, self.dumps())

    def asset_ids(self) -> Iterator[tuple[int, str]]:
        for index, document in enumerate(self.documents):
            asset_id = _asset_id_of(document)
            if asset_id is not None:
                yield index, asset_id


def _asset_id_of(document: Any) -> str | None:
    if not isinstance(document, Mapping):
        return None
    metadata = document.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    asset_id = metadata.get("asset_id")
    return str(asset_id) if asset_id is not None else None


def write_atomic(path: Path, text: str) -> None:
    """Replace a manifest file in one step, keeping its mode (:mod:`reconciler.files`)."""
    try:
        files.write_atomic(path, text)
    except OSError as exc:
        raise ManifestWriteError(f"{path}: cannot write: {exc.strerror or exc}") from exc


def manifest_files(directory: Path) -> list[Path]:
    """Every manifest file under ``directory`` that the loader reads, in a stable order."""
    if not directory.is_dir():
        return []
    return list(discovery.manifest_files(directory))


@dataclass(frozen=True)
class Located:
    file: ManifestFile
    index: int  # which document of the file


def index_by_asset_id(directory: Path) -> dict[str, Located]:
    """Where each asset already has a manifest under ``directory`` (first occurrence wins)."""
    found: dict[str, Located] = {}
    for path in manifest_files(directory):
        manifest = ManifestFile.load(path)
        for index, asset_id in manifest.asset_ids():
            found.setdefault(asset_id, Located(manifest, index))
    return found


def new_document(asset_id: str, spec: Mapping[str, Any], metadata: Mapping[str, Any]) -> Any:
    """A fresh manifest document: apiVersion, kind, metadata (asset_id first), spec."""
    meta = CommentedMap()
    meta["asset_id"] = asset_id
    for key, value in metadata.items():
        if value is not None:
            meta[key] = value
    document = CommentedMap()
    document["apiVersion"] = API_VERSION
    document["kind"] = KIND
    document["metadata"] = meta
    document["spec"] = _to_commented(spec)
    return document


def _to_commented(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = CommentedMap()
        for key, item in value.items():
            out[key] = _to_commented(item)
        return out
    if isinstance(value, list | tuple):
        seq = CommentedSeq(_to_commented(item) for item in value)
        if value and all(not isinstance(item, Mapping | list | tuple) for item in value):
            seq.fa.set_flow_style()  # short scalar lists read best inline: [NEWS, FEMALE]
        return seq
    return value


@dataclass(frozen=True)
class SpecEdit:
    """One value of a manifest's spec that a merge changed: ``before`` None when added,
    ``after`` None when removed."""

    path: FieldPath
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        """``+`` added, ``-`` removed or cleared, ``~`` changed."""
        if self.before is None:
            return "+"
        if self.after is None or self.after in ("", []):
            return "-"
        return "~"


def _plain(value: Any) -> Any:
    """ruamel's containers and scalars as plain data (for reporting an edit)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def merge_spec(
    document: Any,
    spec: Mapping[str, Any],
    *,
    keep: Collection[str] = (),
    equal: Equal = plain_equal,
    unordered: Unordered = never_unordered,
) -> list[SpecEdit]:
    """Make ``document``'s spec say ``spec`` while touching as little of the text as possible.

    Values that ``equal`` considers the same are left exactly as written.  A field the manifest
    manages but ``spec`` no longer has is cleared (``[]`` / ``""``) when it is a list or string,
    so it stays managed; other such fields are removed.  Top-level keys in ``keep`` (write-only
    fields that cannot be read back) are never touched.  Returns the values it changed, so that
    a local edit that import overwrites is never lost silently.
    """
    current = document.get("spec")
    if not isinstance(current, CommentedMap):
        document["spec"] = _to_commented(spec)
        return [SpecEdit((), _plain(current), _plain(spec))]
    merger = _Merger(keep, equal, unordered, [])
    merger.map(current, spec, ())
    return merger.edits


@dataclass(frozen=True)
class _Merger:
    keep: Collection[str]
    equal: Equal
    unordered: Unordered
    edits: list[SpecEdit]

    def note(self, path: FieldPath, before: Any, after: Any) -> None:
        self.edits.append(SpecEdit(path, _plain(before), _plain(after)))

    def map(self, node: CommentedMap, new: Mapping[str, Any], path: FieldPath) -> bool:
        return _merge_map(self, node, new, path)

    def seq(self, node: CommentedSeq, new: list[Any], path: FieldPath) -> bool:
        """Edit the list in place, so comments on the items that stay stay with them."""
        self.note(path, list(node), new)
        if self.unordered(path) and not any(isinstance(v, Mapping | list) for v in new):
            for index in reversed(range(len(node))):
                if node[index] not in new:
                    del node[index]
            for value in new:
                if value not in node:
                    node.append(value)
            return True
        for index, value in enumerate(new[: len(node)]):
            old = node[index]
            if self.equal((*path, index), old, value):
                continue
            if isinstance(old, CommentedMap) and isinstance(value, Mapping):
                self.map(old, value, (*path, index))
            else:
                node[index] = _to_commented(value)
        while len(node) > len(new):
            del node[len(node) - 1]
        for value in new[len(node) :]:
            node.append(_to_commented(value))
        return True


def _merge_map(
    merger: _Merger,
    node: CommentedMap,
    new: Mapping[str, Any],
    path: FieldPath,
) -> bool:
    """Merge ``new`` into ``node``.  Comment lines after the mapping's last value (a note
    about the block, or about what follows it) stay at the mapping's end when keys are
    appended, not above the new keys."""
    if all(key in node for key in new):
        return _merge_entries(merger, node, new, path)
    trailing = _detach_trailing(node)
    changed = _merge_entries(merger, node, new, path)
    if trailing is not None:
        _attach_trailing(node, trailing)
    return changed


def _merge_entries(
    merger: _Merger,
    node: CommentedMap,
    new: Mapping[str, Any],
    path: FieldPath,
) -> bool:
    keep, equal = merger.keep, merger.equal
    changed = False
    for key in list(node.keys()):
        if not path and key in keep:
            continue
        if key in new:
            continue
        old = node[key]
        key_path = (*path, key)
        if isinstance(old, CommentedMap):
            changed = merger.map(old, {}, key_path) or changed
            if not old:
                del node[key]
                changed = True
        elif isinstance(old, list):
            if old:
                merger.note(key_path, old, [])
                empty = CommentedSeq()
                node[key] = _like(old, empty) if isinstance(old, CommentedSeq) else empty
                changed = True
        elif isinstance(old, str):
            if old:
                merger.note(key_path, old, "")
                node[key] = ""
                changed = True
        else:
            merger.note(key_path, old, None)
            del node[key]
            changed = True
    for key, value in new.items():
        key_path = (*path, key)
        if key not in node:
            merger.note(key_path, None, value)
            node[key] = _to_commented(value)
            changed = True
            continue
        old = node[key]
        if equal(key_path, old, value):
            continue
        if isinstance(old, CommentedMap) and isinstance(value, Mapping):
            changed = merger.map(old, value, key_path) or changed
            continue
        if isinstance(old, CommentedSeq) and isinstance(value, list) and old:
            changed = merger.seq(old, value, key_path) or changed
            continue
        merger.note(key_path, old, value)
        node[key] = _to_commented(value)
        changed = True
    return changed


@dataclass(frozen=True)
class _Leaf:
    """Where ruamel keeps the comment lines after a mapping: on the last value written under
    it, however deep (``items[key][slot]``: slot 2 after a mapping's value, slot 0 after a block
    list's item), and the column of the first block below the mapping on the way there (None
    when the leaf is the mapping's own)."""

    items: dict[Any, list[Any]]
    key: Any
    slot: int
    below: int | None


def _last_leaf(node: CommentedMap) -> _Leaf | None:
    below: int | None = None
    while node:
        key = list(node.keys())[-1]
        value = node[key]
        if isinstance(value, CommentedSeq) and value and not value.fa.flow_style():
            if below is None:
                below = value.lc.col
            return _Leaf(value.ca.items, len(value) - 1, 0, below)
        if not isinstance(value, CommentedMap) or not value:
            return _Leaf(node.ca.items, key, 2, below)
        if below is None:
            below = value.lc.col
        node = value
    return None


def _detach_trailing(node: CommentedMap) -> str | None:
    """Remove and return the whole comment lines after ``node``'s last value that belong to
    ``node``: indented at its keys' column or deeper, but not as deep as a block below it
    (those stay at the end of that block).  An end-of-line comment stays where it is."""
    leaf = _last_leaf(node)
    column = node.lc.col
    if leaf is None or column is None:
        return None
    entry = leaf.items.get(leaf.key)
    if not entry or len(entry) <= leaf.slot or entry[leaf.slot] is None:
        return None
    token = entry[leaf.slot]
    head, _, rest = token.value.partition("\n")
    ours: list[str] = []
    kept: list[str] = []
    for line in rest.splitlines(keepends=True):
        indent = len(line) - len(line.lstrip(" "))
        mine = line.strip() and indent >= column and (leaf.below is None or indent < leaf.below)
        (ours if mine else kept).append(line)
    if not ours:
        return None
    remaining = head + "\n" + "".join(kept)
    if remaining.strip():
        token.value = remaining
    else:
        entry[leaf.slot] = None
    return "".join(ours)


def _attach_trailing(node: CommentedMap, lines: str) -> None:
    """Put comment ``lines`` (as :func:`_detach_trailing` gave them) after ``node``'s last
    value."""
    leaf = _last_leaf(node)
    if leaf is None:
        return
    entry = leaf.items.setdefault(leaf.key, [None, None, None, None])
    while len(entry) < 4:
        entry.append(None)
    if entry[leaf.slot] is None:
        entry[leaf.slot] = CommentToken("\n" + lines, CommentMark(0), None)
    else:
        entry[leaf.slot].value = entry[leaf.slot].value.rstrip("\n") + "\n" + lines


def _like(old: CommentedSeq, new: CommentedSeq) -> CommentedSeq:
    """``new`` in the flow or block style the author used for ``old``."""
    if old.fa.flow_style():
        new.fa.set_flow_style()
    else:
        new.fa.set_block_style()
    return new
