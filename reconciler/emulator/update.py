"""What a PUT does to a stored asset, as a pure function (the strict reading of the reference).

* fields present replace the stored ones; nested objects are replaced whole, per block of
  ``asset_extra_meta`` (blocks not sent are kept);
* read-only fields a client sends are ignored (and reported back for logging);
* write-only fields go to their own record, never to the readable asset;
* ``system_properties`` entries are ADD/DELETE operations on the stored set, keyed by ``key``;
* ``update_time`` moves only when something changed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from reconciler.emulator.body import WRITE_ONLY
from reconciler.emulator.errors import ApiError, validation
from reconciler.emulator.times import next_update_time

Asset = dict[str, Any]

# Whole blocks of asset_extra_meta the service fills itself.
READ_ONLY_BLOCKS = frozenset({"image_meta", "video_meta", "audio_meta"})
# Read-only fields inside writable blocks: kept from the stored asset whatever the client sends.
READ_ONLY_IN_BLOCK: dict[str, frozenset[str]] = {
    "voice_model_meta": frozenset({"voice_capability"}),
    "ppt_meta": frozenset({"ppt_analysis_status", "error_info"}),
}
# "Select a structure based on asset_type. Other unmatched structures will be ignored."
EXTRA_META_FOR_TYPE: dict[str, str] = {
    "VOICE_MODEL": "voice_model_meta",
    "PPT": "ppt_meta",
    "MATERIAL": "material_meta",
    "HUMAN_MODEL_2D": "human_model_2d_meta",
    "IMAGE": "image_meta",
    "VIDEO": "video_meta",
    "AUDIO": "audio_meta",
    "MUSIC": "audio_meta",
}
# States the system holds an asset in while a tenant may not change it.
NON_UPDATABLE_STATES = frozenset({"CREATING", "FAILED", "DELETING", "DELETED", "BLOCK"})
# Types a tenant cannot turn an asset into.
RESERVED_TYPES = frozenset({"VOICE_MODEL", "HUMAN_MODEL_2D"})


@dataclass
class UpdateOutcome:
    asset: Asset
    write_only: Asset
    changed: bool
    ignored: list[str] = field(default_factory=list)


def _merge_extra_meta(
    stored: Asset | None, sent: Asset, asset_type: str | None, ignored: list[str]
) -> Asset:
    result = copy.deepcopy(stored) if stored else {}
    own_block = EXTRA_META_FOR_TYPE.get(asset_type or "")
    for block, value in sent.items():
        path = f"asset_extra_meta.{block}"
        if block in READ_ONLY_BLOCKS:
            ignored.append(f"{path} (read-only)")
            continue
        if block != own_block:
            ignored.append(f"{path} (does not match asset_type {asset_type})")
            continue
        replacement = dict(value)
        kept = READ_ONLY_IN_BLOCK.get(block, frozenset())
        for name in kept:
            if name in replacement:
                ignored.append(f"{path}.{name} (read-only)")
                del replacement[name]
            previous = (stored or {}).get(block) or {}
            if name in previous:
                replacement[name] = copy.deepcopy(previous[name])
        result[block] = replacement
    return result


def _apply_system_properties(stored: list[Asset] | None, ops: list[Asset]) -> list[Asset]:
    current = {item.get("key"): item.get("value") for item in stored or []}
    for index, op in enumerate(ops):
        key = op.get("key")
        if key is None:
            raise validation(f"system_properties[{index}].key is required")
        if op.get("action", "ADD") == "DELETE":
            current.pop(key, None)
        else:
            if op.get("value") is None:
                raise validation(f"system_properties[{index}].value is required to ADD {key}")
            current[key] = op["value"]
    return [{"key": key, "value": value} for key, value in current.items()]


def apply_update(asset: Asset, write_only: Asset, sent: Asset) -> UpdateOutcome:
    """The asset after the checked body ``sent`` (:func:`reconciler.emulator.body.check_body`);
    raises ApiError when the service would refuse the update."""
    state = asset.get("asset_state")
    if state in NON_UPDATABLE_STATES:
        raise ApiError(
            400,
            "MSS.10000003",
            f"Parameter validation abnormal: asset in state {state} cannot be updated",
        )
    new_asset = copy.deepcopy(asset)
    new_hidden = copy.deepcopy(write_only)
    ignored: list[str] = []

    new_type = sent.get("asset_type")
    if new_type is not None and new_type != asset.get("asset_type") and new_type in RESERVED_TYPES:
        raise validation(f"asset_type {new_type} cannot be set by a tenant")
    for name, value in sent.items():
        if name in WRITE_ONLY:
            new_hidden[name] = value
        elif name == "asset_extra_meta":
            merged = _merge_extra_meta(
                asset.get("asset_extra_meta"), value, new_type or asset.get("asset_type"), ignored
            )
            if merged or "asset_extra_meta" in asset:
                new_asset["asset_extra_meta"] = merged
        elif name == "system_properties":
            new_asset["system_properties"] = _apply_system_properties(
                asset.get("system_properties"), value
            )
        else:
            new_asset[name] = value

    changed = new_asset != asset or new_hidden != write_only
    if changed:
        new_asset["update_time"] = next_update_time(asset.get("update_time"))
    return UpdateOutcome(new_asset, new_hidden, changed, ignored)
