"""The emulator's table of what a PUT body may hold: checked against the reference text itself,
and applied the way the service's gateway applies it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator.body import (
    BODY,
    OBJECTS,
    BodyProblems,
    Param,
    check_body,
)

REFERENCE = Path(__file__).parents[1] / "data" / "api" / "update-asset-reference.txt"
# The request tables of the reference page, in page order (the page names each object once, in
# the row that uses it, not above its table).
TABLE_ORDER = [
    "path",
    "headers",
    BODY,
    "ReviewConfig",
    "AssetExtraMeta",
    "VoiceModelAssetMeta",
    "VoiceCapability",
    "ExternalVoiceAssetMeta",
    "PPTAssetMeta",
    "PPTPageInfo",
    "MaterialAssetMeta",
    "MaterialComponentInfo",
    "HumanModel2DAssetMeta",
    "ActionTagInfo",
    "ImageAssetMeta",
    "VideoAssetMeta",
    "AudioAssetMeta",
    "ErrorResponse",
    "SystemProperty",
    "AssetSharedConfig",
]


def reference_tables() -> dict[str, dict[str, tuple[bool, str, str]]]:
    """Object name -> field -> (mandatory, type, description), from the request section."""
    text = REFERENCE.read_text(encoding="utf-8").split("Response Parameters")[0]
    cells = [c.strip() for c in text.split("|")]
    tables: list[dict[str, tuple[bool, str, str]]] = []
    i = 0
    while i < len(cells):
        if cells[i : i + 4] == ["Parameter", "Mandatory", "Type", "Description"]:
            tables.append({})
            i += 5  # the header and its |---| separator
            continue
        if tables and i + 3 < len(cells) and cells[i + 1] in ("Yes", "No"):
            tables[-1][cells[i]] = (cells[i + 1] == "Yes", cells[i + 2], cells[i + 3])
            i += 4
            continue
        i += 1
    assert len(tables) == len(TABLE_ORDER), [list(t) for t in tables]
    return dict(zip(TABLE_ORDER, tables, strict=True))


def reference_type(param: Param) -> str:
    if param.kind in OBJECTS:
        return f"Array of {param.kind} objects" if param.array else f"{param.kind} object"
    return "Array of strings" if param.array else param.kind


def test_every_object_of_the_reference_has_exactly_its_fields() -> None:
    for name, fields in reference_tables().items():
        if name in ("path", "headers"):
            continue
        assert list(OBJECTS[name]) == list(fields), name


def test_types_and_mandatory_flags_match_the_reference() -> None:
    for name, fields in reference_tables().items():
        for field, (mandatory, kind, _description) in fields.items():
            if name in ("path", "headers"):
                continue
            param = OBJECTS[name][field]
            assert (param.mandatory, reference_type(param)) == (mandatory, kind), (name, field)


def test_ranges_and_lengths_match_the_reference() -> None:
    for name, fields in reference_tables().items():
        for field, (_mandatory, _kind, description) in fields.items():
            if name in ("path", "headers"):
                continue
            param = OBJECTS[name][field]
            value_range = re.search(r"Value range: (\d+)~(\d+)", description)
            if value_range:
                assert (param.minimum, param.maximum) == tuple(
                    int(v) for v in value_range.groups()
                ), (name, field)
            length = re.search(r"contains (\d+) to ([\d,]+) characters", description)
            if length and not param.array:
                low, high = int(length.group(1)), int(length.group(2).replace(",", ""))
                assert (param.min_len or 0, param.max_len) == (low, high), (name, field)


def problems(body: Any) -> str:
    with pytest.raises(BodyProblems) as info:
        check_body(body)
    return str(info.value)


def test_a_valid_body_passes_with_nulls_dropped() -> None:
    body = {
        "asset_name": "Sara",
        "asset_description": None,
        "tags": ["NEWS"],
        "asset_extra_meta": {"voice_model_meta": {"speed_ratio": 1, "sex": None}},
        "system_properties": [{"action": "ADD", "key": "BACKGROUND_IMG", "value": "Yes"}],
    }
    assert check_body(body) == {
        "asset_name": "Sara",
        "tags": ["NEWS"],
        "asset_extra_meta": {"voice_model_meta": {"speed_ratio": 1}},
        "system_properties": [{"action": "ADD", "key": "BACKGROUND_IMG", "value": "Yes"}],
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"asset_nam": "x"}, "asset_nam: unknown field of UpdateDigitalAssetRequestBody"),
        ({"asset_order": "3"}, "asset_order: must be an integer"),
        ({"asset_order": 3.0}, "asset_order: must be an integer"),
        ({"asset_order": 40000}, "asset_order: at most 32767"),
        ({"asset_state": "BLOCK"}, "asset_state: 'BLOCK' is not one of ACTIVED, UNACTIVED"),
        ({"tags": ["x" * 129]}, "tags[0]: at most 128 characters"),
        ({"tags": ["t"] * 51}, "tags: at most 50 items"),
        ({"tags": "NEWS"}, "tags: must be an array"),
        ({"review_config": {"no_need_review": "yes"}}, "review_config.no_need_review: must be"),
        (
            {"asset_extra_meta": {"material_meta": {"components": [{"component_name": "c"}]}}},
            "asset_extra_meta.material_meta.components[0].component_type: mandatory",
        ),
        (
            {"asset_extra_meta": {"voice_model_meta": {"speed_ratio": 101.5}}},
            "asset_extra_meta.voice_model_meta.speed_ratio: at most 100",
        ),
        ({"asset_extra_meta": {"human_model_2d_meta": {"device_names": [""]}}}, "at least 1"),
        ({"system_properties": [{"key": "NOPE"}]}, "system_properties[0].key: 'NOPE' is not"),
    ],
)
def test_what_breaks_the_table_is_refused_by_path(body: Any, expected: str) -> None:
    assert expected in problems(body)


def test_at_most_five_problems_are_reported() -> None:
    assert len(problems({f"x{i}": 1 for i in range(9)}).split("; ")) == 5


def test_a_boolean_is_not_a_number_and_a_number_is_not_a_boolean() -> None:
    assert "must be an integer" in problems({"asset_order": True})
    assert "must be true or false" in problems({"review_config": {"no_need_review": 1}})
