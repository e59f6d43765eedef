"""Whole blocks from the raw live JSON: every live key kept, read-only keys dropped."""

from __future__ import annotations

from reconciler.engine.blocks import lay_over, live_fill, whole

VOICE = ("asset_extra_meta", "voice_model_meta")
HUMAN = ("asset_extra_meta", "human_model_2d_meta")


def test_unknown_keys_are_kept_read_only_keys_and_nulls_dropped() -> None:
    live = {"speed_ratio": 1, "voice_capability": {"x": True}, "new_field": {"a": 1}, "age": None}
    assert live_fill(VOICE, live) == {"speed_ratio": 1, "new_field": {"a": 1}}


def test_declared_values_are_laid_over_nested_maps_merged() -> None:
    live = {"external_voice_meta": {"provider": "MOBVOI", "extra": 1}, "sex": "MALE"}
    declared = {"external_voice_meta": {"provider": "HUAWEI_EI"}}
    assert whole(VOICE, live, declared) == {
        "external_voice_meta": {"provider": "HUAWEI_EI", "extra": 1},
        "sex": "MALE",
    }


def test_lists_are_the_declared_ones_never_filled_by_position() -> None:
    live = {
        "action_tag_map": [
            {"action_name_zh": "a", "action_name_en": "wave", "file_name": "w.bin", "new": 1},
            {"action_name_zh": "b", "action_name_en": "nod"},
        ],
        "device_names": ["d1", "d2"],
    }
    declared = {
        "action_tag_map": [{"action_name_zh": "a", "action_name_en": "Wave"}],
        "device_names": ["d3"],
    }
    assert lay_over(HUMAN, live, declared) == {
        "action_tag_map": [{"action_name_zh": "a", "action_name_en": "Wave"}],
        "device_names": ["d3"],
    }


def test_a_block_live_does_not_have_is_the_declared_one() -> None:
    assert whole(HUMAN, None, {"support_live": True}) == {"support_live": True}
