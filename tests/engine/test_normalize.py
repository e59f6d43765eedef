"""Canonical forms: what counts as the same value when a manifest is compared with live."""

from __future__ import annotations

from reconciler.engine import normalize


def test_instants_in_any_offset_compare_equal_and_other_text_is_untouched() -> None:
    path = ("auto_operation_config", 0, "operation_time")
    utc = normalize.canon(path, "2025-01-10T00:00:00Z")
    assert normalize.canon(path, "2025-01-10T08:00:00+08:00") == utc
    assert normalize.canon(path, "2025-01-10T00:00:00.000z") == utc
    assert normalize.canon(path, "tomorrow") == "tomorrow"
    # Only timestamp fields are read as instants: a name that looks like a time stays text.
    assert normalize.canon(("asset_name",), "2025-01-10T08:00:00+08:00") == (
        "2025-01-10T08:00:00+08:00"
    )


def test_a_time_without_offset_is_not_an_instant() -> None:
    assert normalize.parse_instant("2025-01-10T00:00:00") is None


def test_set_like_lists_sort_and_dedupe_ordered_lists_do_not() -> None:
    assert normalize.canon(("tags",), ["NEWS", "FEMALE", "NEWS"]) == ["FEMALE", "NEWS"]
    ordered = [{"operation": "DELETE"}, {"operation": "BLOCK"}]
    assert normalize.canon(("auto_operation_config",), ordered) == ordered


def test_integral_floats_are_ints_and_booleans_stay_booleans() -> None:
    assert normalize.canon(("asset_order",), 3.0) == 3
    assert normalize.canon(("asset_order",), 2.5) == 2.5
    assert normalize.canon(("x",), True) is True


def test_system_properties_compare_as_a_map() -> None:
    live = [{"key": "B", "value": "Yes"}, {"key": "A", "value": "No"}]
    assert normalize.canon(("system_properties",), live) == {"B": "Yes", "A": "No"}
    assert normalize.canon(("system_properties",), {"A": "No", "B": "Yes"}) == {
        "A": "No",
        "B": "Yes",
    }


def test_absent_live_fields_equal_their_documented_empty_value() -> None:
    assert normalize.project_live(("tags",), [], None) == []
    assert normalize.project_live(("asset_description",), "", None) == ""
    hm = ("asset_extra_meta", "human_model_2d_meta", "support_live")
    assert normalize.project_live(hm, False, None) is False
    # A number is never assumed to be its default: absence stays absence.
    assert normalize.project_live(("asset_order",), 0, None) is None


def test_live_is_cut_to_the_shape_the_manifest_declares() -> None:
    desired = {"human_model_2d_meta": {"support_live": True}}
    live = {"human_model_2d_meta": {"support_live": False, "model_version": "V3"}, "x": 1}
    assert normalize.project_live(("asset_extra_meta",), desired, live) == {
        "human_model_2d_meta": {"support_live": False}
    }


def test_absent_table_defaults_cannot_be_changed_by_a_caller() -> None:
    first = normalize.absent_value(("tags",))
    first.append("X")
    assert normalize.absent_value(("tags",)) == []


def test_canonical_json_is_stable_across_key_order_and_float_form() -> None:
    assert normalize.canonical_json({"b": 1.0, "a": [2]}) == normalize.canonical_json(
        {"a": [2], "b": 1}
    )


def test_nulls_are_pruned_recursively() -> None:
    assert normalize.prune_none({"a": None, "b": {"c": None, "d": 1}, "e": [{"f": None}]}) == {
        "b": {"d": 1},
        "e": [{}],
    }
