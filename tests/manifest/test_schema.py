"""The manifest model against the API models it is built from, and the read-only and
per-type rules (docs/field-semantics.md §2, §6)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from reconciler.api import enums
from reconciler.api.fields import READ_ONLY_FIELDS
from reconciler.api.models import AssetExtraMeta, UpdateDigitalAssetRequestBody
from reconciler.manifest.schema import (
    AssetSpec,
    Manifest,
    ManifestAssetExtraMeta,
    manifest_json_schema,
)


def document(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "reconciler.metastudio/v1",
        "kind": "DigitalAsset",
        "metadata": {"asset_id": "a"},
        "spec": spec,
    }


def errors(spec: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        Manifest.model_validate(document(spec))
    return [(tuple(e["loc"]), e["msg"]) for e in info.value.errors()]


def test_spec_has_exactly_the_update_body_fields() -> None:
    assert list(AssetSpec.model_fields) == list(UpdateDigitalAssetRequestBody.model_fields)


@pytest.mark.parametrize(
    "name",
    ["asset_name", "asset_description", "asset_state", "tags", "asset_order", "supported_service"],
)
def test_shared_fields_keep_the_api_constraints(name: str) -> None:
    ours = manifest_json_schema()["$defs"]["AssetSpec"]["properties"][name]
    theirs = UpdateDigitalAssetRequestBody.model_json_schema()["properties"][name]
    inner = next(s for s in theirs["anyOf"] if s.get("type") != "null")
    for key in ("maxLength", "maxItems", "minimum", "maximum", "enum", "items"):
        assert ours.get(key) == inner.get(key), key


@pytest.mark.parametrize("path", sorted(READ_ONLY_FIELDS))
def test_read_only_fields_are_rejected_with_their_reason(path: tuple[str, ...]) -> None:
    spec: dict[str, Any] = {}
    node = spec
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = {}
    ((loc, message),) = errors(spec)
    assert loc == ("spec", *path)
    assert message == READ_ONLY_FIELDS[path]
    assert "read-only" in message and "remove it" in message


def test_read_only_table_names_real_api_fields() -> None:
    for path in READ_ONLY_FIELDS:
        model: type[BaseModel] = UpdateDigitalAssetRequestBody
        for part in path[:-1]:
            annotation = model.model_fields[part].annotation
            model = next(a for a in annotation.__args__ if isinstance(a, type))  # type: ignore[union-attr]
        assert path[-1] in model.model_fields


@pytest.mark.parametrize(
    ("asset_type", "block"),
    [
        (t, b)
        for t, b in enums.EXTRA_META_FOR_TYPE.items()
        if ("asset_extra_meta", b) not in READ_ONLY_FIELDS
    ],
)
def test_matching_extra_meta_block_is_accepted(asset_type: str, block: str) -> None:
    manifest = Manifest.model_validate(
        document({"asset_type": asset_type, "asset_extra_meta": {block: {}}})
    )
    assert manifest.spec.model_dump(exclude_unset=True) == {
        "asset_type": asset_type,
        "asset_extra_meta": {block: {}},
    }


def test_every_settable_block_is_in_the_manifest_model() -> None:
    settable = {
        name
        for name in AssetExtraMeta.model_fields
        if ("asset_extra_meta", name) not in READ_ONLY_FIELDS
    }
    assert settable == {"voice_model_meta", "ppt_meta", "material_meta", "human_model_2d_meta"}
    assert set(ManifestAssetExtraMeta.model_fields) == set(AssetExtraMeta.model_fields)


def test_system_properties_is_a_map() -> None:
    manifest = Manifest.model_validate(
        document({"system_properties": {"BACKGROUND_SCENE": "Vertical"}})
    )
    assert manifest.spec.system_properties == {"BACKGROUND_SCENE": "Vertical"}
    ((loc, _),) = errors(
        {"system_properties": [{"action": "ADD", "key": "BACKGROUND_IMG", "value": "Yes"}]}
    )
    assert loc == ("spec", "system_properties")


def test_write_only_fields_are_accepted() -> None:
    spec = {"review_config": {"no_need_review": True}, "shared_config": {"shared_type": "PRIVATE"}}
    assert Manifest.model_validate(document(spec)).spec.model_dump(exclude_unset=True) == spec


def test_only_tenant_settable_states() -> None:
    for state in ("ACTIVED", "UNACTIVED"):
        Manifest.model_validate(document({"asset_state": state}))
    ((loc, message),) = errors({"asset_state": "WAITING_DELETE"})
    assert loc == ("spec", "asset_state")
    assert "'ACTIVED' or 'UNACTIVED'" in message
