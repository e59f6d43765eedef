"""Whether a read is enough to diff, and what changed between the planned read and a fresh one."""

from __future__ import annotations

from typing import Any

from reconciler.engine.freshness import changed_fields, lacking, missing_for_diff

ROW: dict[str, Any] = {
    "asset_id": "a",
    "asset_name": "Sara",
    "asset_type": "HUMAN_MODEL_2D",
    "tags": ["NEWS"],
    "update_time": "2024-01-01T00:00:00Z",
    "files": [{"download_url": "https://x?sig=1"}],
    "asset_extra_meta": {"human_model_2d_meta": {"support_live": False}},
}


def test_a_row_with_every_managed_field_and_block_is_enough() -> None:
    spec = {"asset_name": "x", "tags": [], "asset_extra_meta": {"human_model_2d_meta": {}}}
    assert missing_for_diff(spec, ROW) == []


def test_missing_fields_and_blocks_are_named_write_only_ones_never() -> None:
    row = {k: v for k, v in ROW.items() if k != "asset_extra_meta"}
    spec = {
        "asset_description": "d",
        "review_config": {"no_need_review": True},
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": True}},
    }
    assert missing_for_diff(spec, row) == [
        "asset_description",
        "asset_extra_meta.human_model_2d_meta",
    ]


def test_a_block_of_another_type_is_not_asked_for() -> None:
    spec = {"asset_extra_meta": {"voice_model_meta": {"speed_ratio": 1}}}
    assert missing_for_diff(spec, ROW) == []


def test_volatile_fields_are_not_changes() -> None:
    fresh = {**ROW, "update_time": "2025-01-01T00:00:00Z", "files": [{"download_url": "y"}]}
    assert changed_fields(ROW, fresh) == []


def test_changes_are_named_per_field_and_per_block_in_canonical_form() -> None:
    fresh = {
        **ROW,
        "tags": ["NEWS"],
        "asset_order": 1,
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": False, "x": 1}},
    }
    assert changed_fields(ROW, fresh) == ["asset_extra_meta.human_model_2d_meta", "asset_order"]
    assert changed_fields({"n": 1}, {"n": 1.0}) == []


def test_a_summary_row_lacks_what_the_planned_read_had() -> None:
    summary = {k: v for k, v in ROW.items() if k not in ("tags", "asset_extra_meta")}
    assert lacking(ROW, summary) == ["tags", "asset_extra_meta.human_model_2d_meta"]
    assert lacking(summary, ROW) == []
