"""The client's request models against the emulator's table of the reference (two independent
readings of the same page): the same objects, fields and mandatory fields."""

from __future__ import annotations

from pydantic import BaseModel

from reconciler.api import models
from reconciler.emulator.body import BODY, OBJECTS
from reconciler.engine.policy import model_of


def _walk(model: type[BaseModel], name: str, seen: dict[str, type[BaseModel]]) -> None:
    seen[name] = model
    for info in model.model_fields.values():
        sub = model_of(info.annotation)
        if sub is not None and sub.__name__ not in seen:
            _walk(sub, sub.__name__, seen)


def test_request_models_cover_the_reference_objects_field_for_field() -> None:
    seen: dict[str, type[BaseModel]] = {}
    _walk(models.UpdateDigitalAssetRequestBody, BODY, seen)
    assert set(seen) == set(OBJECTS)
    for name, model in seen.items():
        assert list(model.model_fields) == list(OBJECTS[name]), name
        required = {f for f, info in model.model_fields.items() if info.is_required()}
        assert required == {f for f, p in OBJECTS[name].items() if p.mandatory}, name


def test_the_block_of_each_asset_type_agrees_with_the_emulator() -> None:
    from reconciler.api import enums
    from reconciler.emulator import update

    assert enums.EXTRA_META_FOR_TYPE == update.EXTRA_META_FOR_TYPE
    assert enums.NON_UPDATABLE_STATES == update.NON_UPDATABLE_STATES


def test_the_block_names_the_engine_knows_are_the_request_models_blocks() -> None:
    from reconciler.api.fields import EXTRA_META_BLOCKS

    assert tuple(models.AssetExtraMeta.model_fields) == EXTRA_META_BLOCKS
