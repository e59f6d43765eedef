"""The per-field rules of docs/field-semantics.md, in one table.

Paths are tuples of field names; ``"*"`` stands for any list index.  Everything the diff, the
normaliser and the fingerprints need to know about a field's meaning lives here, so a reader can
check the semantics against the API reference in one place.  docs/field-semantics.md explains
each rule with an example.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from reconciler import constants
from reconciler.api import enums
from reconciler.api.fields import EXTRA_META_BLOCKS as _BLOCKS
from reconciler.api.fields import READ_ONLY_FIELDS, WRITE_ONLY_FIELDS

if TYPE_CHECKING:
    from pydantic import BaseModel

Pattern = tuple[str, ...]

# Rule 4: lists whose order carries no meaning; they compare as sets.
SET_LIKE: frozenset[Pattern] = frozenset(
    {
        ("tags",),
        ("supported_service",),
        ("asset_extra_meta", "voice_model_meta", "languages"),
        ("asset_extra_meta", "human_model_2d_meta", "device_names"),
        ("shared_config", "allowed_project_ids"),
    }
)

# Lists whose order is meaningful: compared (and sent) as a whole, in order.
ORDERED: frozenset[Pattern] = frozenset(
    {
        ("auto_operation_config",),
        ("asset_extra_meta", "human_model_2d_meta", "action_tag_map"),
        ("asset_extra_meta", "ppt_meta", "pages"),
        ("asset_extra_meta", "material_meta", "components"),
    }
)

# Rule 12: the ordered lists of objects whose items are matched with live by a key, never by
# position (the table is shared with the manifest schema, which refuses duplicate identities).
# ``auto_operation_config`` has no such key: its items are sent as written.
LIST_IDENTITY: dict[Pattern, str] = constants.LIST_ITEM_IDENTITY

# Rule 3: accepted by Update Asset, never returned by the API.
WRITE_ONLY: frozenset[str] = WRITE_ONLY_FIELDS

# Rule 2: filled by the service ("automatically extracted/filled", "can be queried but cannot be
# configured").  The table lives beside the API models (with the reason shown to users); the
# manifest schema rejects these paths, and the engine never sends them.
READ_ONLY: frozenset[Pattern] = frozenset(READ_ONLY_FIELDS)


def read_only_reason(path: Pattern) -> str:
    """Why a read-only path cannot be set (the message the manifest schema uses)."""
    return READ_ONLY_FIELDS.get(path, f"{'.'.join(path)} is read-only")


# Rule 7: nested objects that are sent whole when any of their fields changes.
EXTRA_META_BLOCKS: tuple[str, ...] = _BLOCKS
SENT_WHOLE: frozenset[Pattern] = frozenset(
    {("asset_extra_meta", block) for block in EXTRA_META_BLOCKS} | {(f,) for f in WRITE_ONLY}
)

# Rule 5: declared as a map KEY: value, sent as ADD/DELETE operations.
SYSTEM_PROPERTIES = "system_properties"

# Rule 8: RFC 3339 timestamps compare as instants.
TIMESTAMPS: frozenset[Pattern] = frozenset(
    {
        ("shared_config", "expire_time"),
        ("auto_operation_config", "*", "operation_time"),
    }
)

# Rule 8: what an absent (or null) live field equals, where the API treats absence and this value
# alike.  Empty strings, lists and maps are "nothing"; booleans use the default the reference
# documents.  Numbers and enumerations are deliberately absent from this table: an absent number
# is not assumed to be its documented default, so a declared value is sent.
_HM = ("asset_extra_meta", "human_model_2d_meta")
_VM = ("asset_extra_meta", "voice_model_meta")
ABSENT_EQUALS: dict[Pattern, Any] = {
    ("asset_description",): "",
    ("tags",): [],
    ("supported_service",): [],
    ("auto_operation_config",): [],
    (SYSTEM_PROPERTIES,): {},
    ("asset_extra_meta",): {},
    **{("asset_extra_meta", block): {} for block in EXTRA_META_BLOCKS},
    (*_VM, "languages"): [],
    (*_VM, "is_realtime_voice"): True,
    (*_VM, "is_support_vc_process"): False,
    (*_VM, "is_support_thai_auto_split"): False,
    (*_VM, "is_flexus"): False,
    (*_VM, "is_enhance_rhythm"): False,
    (*_HM, "device_names"): [],
    (*_HM, "action_tag_map"): [],
    (*_HM, "is_action_editable"): False,
    (*_HM, "is_live_copy"): False,
    (*_HM, "is_real_background"): False,
    (*_HM, "support_live"): False,
    (*_HM, "is_with_action_library"): False,
    (*_HM, "is_flexus"): False,
    ("asset_extra_meta", "ppt_meta", "auto_analysis"): False,
    ("asset_extra_meta", "ppt_meta", "pages"): [],
    ("asset_extra_meta", "material_meta", "components"): [],
}

# Rule 6: which asset_extra_meta block belongs to which asset type.
EXTRA_META_FOR_TYPE: dict[str, str] = enums.EXTRA_META_FOR_TYPE

# Live fields left out of the staleness fingerprint: they change without anyone editing the
# asset (signed download URLs are re-issued on every read; update_time is covered by the content).
VOLATILE_FIELDS: frozenset[str] = frozenset({"files", "update_time"})


def pattern(path: Iterable[str | int]) -> Pattern:
    """A concrete path as a table key: list indexes become ``"*"``."""
    return _pattern(path if type(path) is tuple else tuple(path))


@functools.lru_cache(maxsize=4096)
def _pattern(path: tuple[str | int, ...]) -> Pattern:
    # Cached: the diff asks for the same few dozen paths of every asset.
    return tuple("*" if isinstance(part, int) else part for part in path)


def is_read_only(path: Iterable[str | int]) -> bool:
    return _read_only(pattern(path))


@functools.lru_cache(maxsize=4096)
def _read_only(pat: Pattern) -> bool:
    return any(pat[: len(ro)] == ro for ro in READ_ONLY)


def expected_block(asset_type: str | None) -> str | None:
    """The asset_extra_meta block that is meaningful for ``asset_type`` (None: no block is)."""
    return EXTRA_META_FOR_TYPE.get(asset_type or "")


# --- writable shape, from the request models --------------------------------------------------

WritableTree = dict[str, "WritableTree | None"]


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The request model inside ``X | None`` or ``list[X]``, if any."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_of(arg)
        if found is not None:
            return found
    return None


def _tree(model: type[BaseModel], prefix: Pattern) -> WritableTree:
    tree: WritableTree = {}
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        if is_read_only(path):
            continue
        sub = model_of(info.annotation)
        tree[name] = _tree(sub, path) if sub is not None else None
    return tree


@functools.cache
def writable_blocks() -> dict[str, WritableTree]:
    """The writable fields of each asset_extra_meta block (read-only ones removed), nested
    models (and models inside lists) expanded: what a block filled from live may keep.  Built
    from the request models on first use (only ``import`` needs it), so that a run that
    validates no manifest itself never imports them."""
    from reconciler.api import models

    out: dict[str, WritableTree] = {}
    for block, info in models.AssetExtraMeta.model_fields.items():
        model = model_of(info.annotation)
        if model is not None and not is_read_only(("asset_extra_meta", block)):
            out[block] = _tree(model, ("asset_extra_meta", block))
    return out


def writable_view(value: Any, tree: WritableTree | None) -> Any:
    """``value`` reduced to the fields the request model accepts; nulls dropped.

    Live data may carry read-only or not-yet-known fields; sending them back would be rejected by
    a strict service, so a block filled from live keeps only what Update Asset accepts.
    """
    if tree is None:
        return value
    if isinstance(value, list):
        return [writable_view(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: writable_view(item, tree[key])
        for key, item in value.items()
        if key in tree and item is not None
    }
