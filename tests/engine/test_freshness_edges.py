"""Read freshness at its edges: which fields make a summary row need a full read, and what a
fresh read before the write reports as changed (the staleness check's names)."""

from __future__ import annotations

from reconciler.engine.freshness import changed_fields, missing_for_diff

VOICE = "voice_model_meta"


def test_a_declared_system_properties_map_missing_from_a_summary_row_is_asked_for() -> None:
    spec = {"system_properties": {"BACKGROUND_IMG": "Yes"}, "asset_name": "x"}
    row = {"asset_id": "a", "asset_type": "VOICE_MODEL", "asset_name": "x"}
    assert missing_for_diff(spec, row) == ["system_properties"]


def test_fields_declared_after_a_write_only_one_are_still_checked() -> None:
    spec = {
        "review_config": {"no_need_review": True},
        "shared_config": {"expire_time": "2030-01-01T00:00:00Z"},
        "asset_name": "x",
        "tags": ["NEWS"],
    }
    row = {"asset_id": "a", "asset_type": "VOICE_MODEL", "asset_name": "x"}
    assert missing_for_diff(spec, row) == ["tags"]


def test_the_block_of_the_declared_type_is_asked_for_when_the_row_has_no_type() -> None:
    spec = {"asset_type": "VOICE_MODEL", "asset_extra_meta": {VOICE: {"speed_ratio": 1}}}
    row = {"asset_id": "a"}
    assert missing_for_diff(spec, row) == ["asset_type", f"asset_extra_meta.{VOICE}"]


def test_a_changed_map_field_is_named_by_its_own_name() -> None:
    planned = {"asset_id": "a", "review_state": {"stage": 1}, "tags": ["A"]}
    fresh = {"asset_id": "a", "review_state": {"stage": 2}, "tags": ["A"]}
    assert changed_fields(planned, fresh) == ["review_state"]


def test_changed_blocks_are_named_one_by_one_and_equal_forms_are_no_change() -> None:
    planned = {
        "asset_extra_meta": {VOICE: {"speed_ratio": 1.0}, "other_meta": {"a": 1}},
        "tags": ["A", "B"],
        "update_time": "2024-01-01T00:00:00Z",
    }
    fresh = {
        "asset_extra_meta": {VOICE: {"speed_ratio": 1}, "other_meta": {"a": 2}},
        "tags": ["A", "B"],
        "update_time": "2024-02-01T00:00:00Z",
    }
    assert changed_fields(planned, fresh) == ["asset_extra_meta.other_meta"]


def test_the_own_block_is_asked_for_even_after_a_foreign_one() -> None:
    spec = {"asset_extra_meta": {"human_model_2d_meta": {"support_live": True}, VOICE: {}}}
    row = {"asset_id": "a", "asset_type": "VOICE_MODEL", "asset_extra_meta": {}}
    assert missing_for_diff(spec, row) == [f"asset_extra_meta.{VOICE}"]


def test_a_set_like_list_the_service_reordered_is_no_change_since_plan() -> None:
    """The fresh read before a write compares tags as a set, as the plan and the fingerprint
    do: a service that returns them in another order has not changed the asset."""
    planned = {"tags": ["NEWS", "SPORTS"], "asset_name": "a"}
    fresh = {"tags": ["SPORTS", "NEWS"], "asset_name": "a"}
    assert changed_fields(planned, fresh) == []
    assert changed_fields(planned, {**fresh, "tags": ["SPORTS"]}) == ["tags"]


def test_a_set_like_list_inside_a_block_the_service_reordered_is_no_change() -> None:
    """``device_names`` is set-like inside its block: known by its whole path."""
    block = "asset_extra_meta"
    planned = {block: {"human_model_2d_meta": {"device_names": ["a", "b"]}}}
    fresh = {block: {"human_model_2d_meta": {"device_names": ["b", "a"]}}}
    assert changed_fields(planned, fresh) == []
