"""The per-field rules table: read-only paths, the writable shape, blocks per asset type."""

from __future__ import annotations

from reconciler.api.fields import READ_ONLY_FIELDS, WRITE_ONLY_FIELDS
from reconciler.engine import policy


def test_read_only_covers_the_field_and_everything_under_it() -> None:
    assert policy.is_read_only(("asset_extra_meta", "image_meta"))
    assert policy.is_read_only(("asset_extra_meta", "image_meta", "width"))
    assert policy.is_read_only(("asset_extra_meta", "ppt_meta", "error_info", 0, "code"))
    assert not policy.is_read_only(("asset_extra_meta", "ppt_meta", "pages"))
    assert not policy.is_read_only(("asset_name",))


def test_read_only_reasons_come_from_the_api_table() -> None:
    for path, reason in READ_ONLY_FIELDS.items():
        assert policy.read_only_reason(path) == reason
    assert policy.read_only_reason(("x", "y")) == "x.y is read-only"


def test_list_indexes_match_any_item() -> None:
    assert policy.pattern(("auto_operation_config", 3, "operation_time")) == (
        "auto_operation_config",
        "*",
        "operation_time",
    )
    assert policy.pattern(("auto_operation_config", 3, "operation_time")) in policy.TIMESTAMPS


def test_write_only_fields_are_sent_whole() -> None:
    assert policy.WRITE_ONLY == WRITE_ONLY_FIELDS
    assert all((name,) in policy.SENT_WHOLE for name in WRITE_ONLY_FIELDS)


def test_set_like_and_ordered_lists_do_not_overlap() -> None:
    assert not policy.SET_LIKE & policy.ORDERED


def test_each_asset_type_has_at_most_its_own_block() -> None:
    assert policy.expected_block("HUMAN_MODEL_2D") == "human_model_2d_meta"
    assert policy.expected_block("VOICE_MODEL") == "voice_model_meta"
    assert policy.expected_block(None) is None


def test_the_writable_shape_leaves_out_read_only_fields() -> None:
    assert "image_meta" not in policy.writable_blocks()
    voice = policy.writable_blocks()["voice_model_meta"]
    assert "voice_capability" not in voice and "speed_ratio" in voice
    live = {"speed_ratio": 1.5, "voice_capability": {"x": 1}, "future": 1, "sex": None}
    assert policy.writable_view(live, voice) == {"speed_ratio": 1.5}
