"""``reconciler import``: manifests from live state.

The point of an import is a manifest that, the moment it is written, validates and plans as
"no changes".  So only what Update Asset accepts is written (no response-only fields, no
read-only metadata, no write-only fields since they cannot be read back), in the shape manifests
use (``system_properties`` as ``KEY: value``, only the ``asset_extra_meta`` block of the asset's
type), with empty values left out.  An asset that already has a manifest under the directory is
updated in place through :mod:`reconciler.manifest.writer`, so comments and layout survive.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.api import models
from reconciler.api.answers import non_finite_path
from reconciler.api.enums import NON_UPDATABLE_STATES
from reconciler.engine import normalize, policy
from reconciler.fieldpath import FieldPath, format_path
from reconciler.manifest import writer
from reconciler.manifest.loader import problems_in_text
from reconciler.manifest.schema import (
    SCHEMA_FILE_NAME,
    AssetSpec,
    Metadata,
    manifest_json_schema_text,
)

# Settable by tenants; any other live state (CREATING, BLOCK, ...) is the service's to set.
SETTABLE_STATES = frozenset({"ACTIVED", "UNACTIVED"})
# Not imported although Update Asset accepts it: the type is what the asset *is* (uploaded
# media, a trained model); it is identity, not configuration, and the reference lets normal
# users set it only for some types.  The manifest records it in a comment instead.
IDENTITY_FIELDS = frozenset({"asset_type"})
# Set by the platform (the reference: common users cannot modify them).  A new manifest leaves
# them out; a manifest that names some keys gets those keys refreshed, one by one.
PLATFORM_FIELDS = frozenset({policy.SYSTEM_PROPERTIES})
SKIPPED_FIELDS = models.RESPONSE_ONLY_FIELDS | policy.WRITE_ONLY | IDENTITY_FIELDS | PLATFORM_FIELDS


def _is_empty(value: Any) -> bool:
    return normalize.is_empty(value)


def _prune(value: Any) -> Any:
    """Drop empty values from maps, recursively (list items are kept as they are)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            pruned = _prune(item)
            if not _is_empty(pruned):
                out[key] = pruned
        return out
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


def _model_fields(value: Any, model: type[models.RequestModel]) -> Any:
    """``value`` (a map or a list of maps) cut to the fields ``model`` accepts."""
    if isinstance(value, list):
        return [_model_fields(item, model) for item in value]
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if k in model.model_fields}
    return value


def spec_from_live(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest ``spec`` that describes a live asset (see module docstring).

    Keys follow the order of the Update Asset body, so new manifests read the same way.
    """
    asset_type = raw.get("asset_type")
    spec: dict[str, Any] = {}
    for name in models.UpdateDigitalAssetRequestBody.model_fields:
        if name in SKIPPED_FIELDS:
            continue
        value = raw.get(name)
        if name == "asset_state" and value not in SETTABLE_STATES:
            continue
        if name == "asset_extra_meta":
            value = _extra_meta(value, asset_type)
        elif name == "auto_operation_config":
            value = _model_fields(value, models.AutoOperationConfig)
        value = _prune(value)
        if not _is_empty(value):
            spec[name] = value
    return spec


def _extra_meta(value: Any, asset_type: Any) -> dict[str, Any] | None:
    block = policy.expected_block(asset_type if isinstance(asset_type, str) else None)
    if not isinstance(value, Mapping) or block is None or block not in policy.writable_blocks():
        return None
    content = value.get(block)
    if not isinstance(content, Mapping):
        return None
    return {block: policy.writable_view(dict(content), policy.writable_blocks()[block])}


def validated(spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``spec`` with every top-level field the manifest schema rejects removed, and why.

    The service may return values newer than the reference (a new enumeration value, a longer
    name); importing the rest of the asset is more useful than refusing it.
    """
    problems: list[str] = []
    for _ in range(len(spec) + 1):
        try:
            AssetSpec.model_validate(spec)
        except ValidationError as exc:
            bad: dict[str, str] = {}
            for error in exc.errors():
                loc = error.get("loc") or ()
                if loc and isinstance(loc[0], str) and loc[0] in spec:
                    message = error.get("msg", "invalid")
                    bad.setdefault(loc[0], f"{format_path(tuple(loc))}: {message}")
            if not bad:
                problems.append(str(exc).splitlines()[0])
                return {}, problems
            for key, message in bad.items():
                del spec[key]
                problems.append(f"{key} not imported ({message})")
            continue
        break
    return spec, problems


def slugify(text: str | None, max_length: int = 48) -> str:
    """``"Sara Model"`` -> ``sara-model``; non-Latin names fold to ASCII or vanish."""
    folded = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    return slug[:max_length].rstrip("-")


def file_name(raw: Mapping[str, Any]) -> str:
    """A stable, readable file name: ``sara-model-93769b5a.yaml``.

    The name part falls back to the asset type (``voice-model-...``) when the asset's name has
    no Latin letters or digits; the id part keeps names unique and stable across renames.
    """
    asset_id = str(raw.get("asset_id", ""))
    short = re.sub(r"[^a-z0-9]", "", asset_id.lower())[:8] or "asset"
    stem = slugify(raw.get("asset_name")) or slugify(raw.get("asset_type")) or "asset"
    return f"{stem}-{short}.yaml"


def spec_equal(path: FieldPath, old: Any, new: Any) -> bool:
    """Same to the service: set-like lists in any order, 1 == 1.0, instants, and so on."""
    return bool(normalize.canon(path, old) == normalize.canon(path, new))


def declared_system_properties(document: Any, raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The live values of the system properties a manifest names (None for a key live lacks),
    or None when it names none: system properties are managed per key."""
    spec = document.get("spec") if isinstance(document, Mapping) else None
    declared = spec.get(policy.SYSTEM_PROPERTIES) if isinstance(spec, Mapping) else None
    if not isinstance(declared, Mapping):
        return None
    live = normalize.system_properties_map(raw.get(policy.SYSTEM_PROPERTIES))
    return {str(key): live.get(str(key)) for key in declared}


@dataclass(frozen=True)
class Known:
    """An asset that already has a manifest under the import's directory: it exists (or did),
    so ``import --all`` reads it by id when no page of the project held it."""

    asset_id: str
    app_user_id: str | None


def known_assets(existing: Mapping[str, writer.Located]) -> list[Known]:
    """The assets ``existing`` (:func:`reconciler.manifest.writer.index_by_asset_id`) has
    manifests for, each with the X-App-UserId its manifest names."""
    known: list[Known] = []
    for asset_id, found in existing.items():
        document = found.file.documents[found.index]
        metadata = document.get("metadata") if isinstance(document, Mapping) else None
        user = metadata.get("app_user_id") if isinstance(metadata, Mapping) else None
        known.append(Known(asset_id, user if isinstance(user, str) and user else None))
    return known


@dataclass
class ImportResult:
    """The manifest files an import created, updated or left alone, and its warnings."""

    created: list[Path] = field(default_factory=list)
    updated: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    schema: Path | None = None  # the schema file, when this import wrote or refreshed it
    refused: list[str] = field(default_factory=list)  # assets not written, and why
    # Assets left out on purpose: in a state no update is allowed in (BLOCK, FAILED, ...).  A
    # manifest for one would make drift and watch report it as blocked until it changes.
    skipped: list[str] = field(default_factory=list)
    # What each update changes in manifests that already existed: (asset id, edit) per path.
    edits: dict[Path, list[tuple[str, writer.SpecEdit]]] = field(default_factory=dict)
    check: bool = False  # nothing was written (--check)

    @property
    def changes(self) -> bool:
        return bool(self.created or self.updated)


def write_imports(
    assets: Iterable[Mapping[str, Any]],
    directory: Path,
    *,
    target: str | None = None,
    check: bool = False,
    existing: dict[str, writer.Located] | None = None,
) -> ImportResult:
    """Write or update one manifest per live asset (``raw`` API JSON) under ``directory``.

    Every value an update changes in an existing manifest is reported (``ImportResult.edits``):
    a local edit not applied yet is overwritten by the live value, and the user must see that.
    With ``check`` nothing is written; the result says what would be.  ``existing``: the
    manifests already under ``directory`` when the caller has indexed them (they are read once).
    """
    result = ImportResult(check=check)
    existing = writer.index_by_asset_id(directory) if existing is None else existing
    dirty: dict[Path, writer.ManifestFile] = {}
    for raw in assets:
        asset_id = str(raw["asset_id"])
        label = f"asset {raw.get('asset_name') or ''!r} ({asset_id!r})"
        if _left_out(raw, label, result):
            continue
        spec, problems = validated(spec_from_live(raw))
        result.warnings += [f"{label}: {p}" for p in problems]
        found = existing.get(asset_id)
        if found is not None:
            document = found.file.documents[found.index]
            properties = declared_system_properties(document, raw)
            keep = set(policy.WRITE_ONLY)
            if properties is not None:
                spec[policy.SYSTEM_PROPERTIES] = properties
            else:
                keep.add(policy.SYSTEM_PROPERTIES)
            edits = writer.merge_spec(document, spec, keep=keep, equal=spec_equal)
            if edits:
                dirty[found.file.path] = found.file
                result.edits.setdefault(found.file.path, []).extend((asset_id, e) for e in edits)
            elif found.file.path not in dirty:
                result.unchanged.append(found.file.path)
            continue
        path = _free_path(directory / file_name(raw), set(dirty))
        metadata: dict[str, Any] = {"target": target, "app_user_id": raw.get("app_user_id")}
        document = writer.new_document(asset_id, spec, metadata)
        header = [f"yaml-language-server: $schema={schema_reference(path, directory)}"]
        if raw.get("asset_type"):
            header.append(f"asset_type: {raw['asset_type']} (set by the service, not managed here)")
        document.yaml_set_start_comment("\n".join(header))
        manifest = writer.ManifestFile(path=path, documents=[document])
        invalid = problems_in_text(manifest.dumps(), str(path))
        if invalid:
            result.refused.append(f"{label}: the manifest would not validate ({invalid[0]})")
            continue
        dirty[path] = manifest
        existing[asset_id] = writer.Located(manifest, 0)
        result.created.append(path)
    for path, manifest in dirty.items():
        invalid = problems_in_text(manifest.dumps(), str(path))
        if invalid:  # an update in place that validate would reject is not written either
            result.refused.append(f"{path}: not updated, it would not validate ({invalid[0]})")
            if path in result.created:
                result.created.remove(path)
            continue
        if not check:
            manifest.save()
        if path not in result.created:
            result.updated.append(path)
    if result.created and not check:
        result.schema = write_schema(directory)
    result.unchanged = [p for p in dict.fromkeys(result.unchanged) if p not in dirty]
    return result


def schema_reference(manifest: Path, directory: Path) -> str:
    """The schema file beside the manifests, relative to ``manifest`` as editors resolve it."""
    return Path(os.path.relpath(directory / SCHEMA_FILE_NAME, manifest.parent)).as_posix()


def write_schema(directory: Path) -> Path | None:
    """Write or refresh the schema that new manifests point to; the path when it changed."""
    path = directory / SCHEMA_FILE_NAME
    text = manifest_json_schema_text()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return None
    writer.write_atomic(path, text)
    return path


def _left_out(raw: Mapping[str, Any], label: str, result: ImportResult) -> bool:
    """Whether the asset gets no manifest: refused (it could not be one), or skipped (it is in
    a state no update is allowed in); said in ``result``."""
    refused = _refusal(raw)
    if refused:
        result.refused.append(f"{label}: {refused}; not imported")
        return True
    state = raw.get("asset_state")
    if state in NON_UPDATABLE_STATES:
        result.skipped.append(
            f"{label} is {state}, a state that does not allow updates: not imported "
            "(import it once the service lets it be updated)"
        )
        return True
    return False


def _refusal(raw: Mapping[str, Any]) -> str | None:
    """Why a live asset cannot become a manifest: its ``asset_id`` or ``app_user_id`` do not
    match the manifest schema, or it holds a value that is not a number (NaN, Infinity)."""
    bad = non_finite_path(raw)
    if bad is not None:
        return f"the service sent {bad} as a non-finite number (NaN or Infinity)"
    data = {"asset_id": raw.get("asset_id"), "app_user_id": raw.get("app_user_id") or None}
    try:
        Metadata.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"the service's {where} does not match the manifest schema ({first['msg']})"
    return None


def _free_path(path: Path, taken: set[Path]) -> Path:
    """``path``, or ``name-2.yaml``... when a file of that name holds other assets."""
    candidate, n = path, 1
    while candidate.exists() or candidate in taken:
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
