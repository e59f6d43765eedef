"""What counts as the same value, at the edges: seen in the plan and in the staleness fingerprint.

Each test plans one asset (the engine's ``diff_asset``) and checks what a user would see: no
change when the service holds the same value in another form, a change (and the body sent) when
it does not.  The fingerprint tests pin the canonical text the plan file's staleness check hashes:
the same asset read twice, in any form and on a machine in any time zone, must hash the same.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.engine import normalize
from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.fingerprint import live_fingerprint
from reconciler.engine.plan import Action, AssetPlan, ChangeKind

AID = "a-edge"
HM = "human_model_2d_meta"
VM = "voice_model_meta"


def plan(spec: dict[str, Any], asset_type: str = "HUMAN_MODEL_2D", **live: Any) -> AssetPlan:
    """The plan for one asset whose live JSON holds ``live`` besides its identity."""
    raw = {"asset_id": AID, "asset_type": asset_type, "asset_state": "ACTIVED", **live}
    return diff_asset(Desired(AID, spec), raw)


def op(time_text: str, **extra: Any) -> dict[str, Any]:
    return {"operation": "BLOCK", "operation_time": time_text, **extra}


@pytest.fixture
def utc_plus_8(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is UTC+8 (most of the tool's users) for one test."""
    monkeypatch.setenv("TZ", "CST-8")  # POSIX form: needs no tz database
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- timestamps ----------------------------------------------------------------------------------


def test_the_same_instant_in_another_offset_is_no_change() -> None:
    spec = {"auto_operation_config": [op("2025-01-10T08:00:00+08:00")]}
    result = plan(spec, auto_operation_config=[op("2025-01-10T00:00:00.000Z")])
    assert result.action is Action.NOOP and result.changes == []


def test_instants_a_microsecond_or_an_hour_apart_are_a_change() -> None:
    for declared in ("2025-01-10T00:00:00.000001Z", "2025-01-10T09:00:00+08:00"):
        spec = {"auto_operation_config": [op(declared)]}
        result = plan(spec, auto_operation_config=[op("2025-01-10T00:00:00Z")])
        assert result.body == {"auto_operation_config": [op(declared)]}, declared


@pytest.mark.usefixtures("utc_plus_8")
def test_instants_are_compared_and_hashed_in_utc_on_a_utc_plus_8_machine() -> None:
    assert time.timezone == -8 * 3600
    spec = {"auto_operation_config": [op("2025-01-10T08:00:00+08:00")]}
    assert plan(spec, auto_operation_config=[op("2025-01-10T00:00:00Z")]).action is Action.NOOP
    # The canonical form (what the staleness fingerprint hashes) is the UTC instant, so a plan
    # made on this machine is not "stale" when applied by CI running in UTC.
    assert normalize.canon_instant("2025-01-10T08:00:00+08:00") == "2025-01-10T00:00:00.000000Z"
    assert normalize.canonical_json(
        {"auto_operation_config": [op("2025-01-10T08:00:00+08:00")]}
    ) == (
        '{"auto_operation_config":[{"operation":"BLOCK",'
        '"operation_time":"2025-01-10T00:00:00.000000Z"}]}'
    )


def test_a_time_named_field_outside_the_timestamp_table_is_compared_as_text() -> None:
    spec = {"asset_extra_meta": {HM: {"operation_time": "2025-01-10T08:00:00+08:00"}}}
    live_block = {"operation_time": "2025-01-10T00:00:00Z", "model_version": "V3"}
    result = plan(spec, asset_extra_meta={HM: live_block})
    assert result.action is Action.UPDATE
    assert result.body == {
        "asset_extra_meta": {
            HM: {"operation_time": "2025-01-10T08:00:00+08:00", "model_version": "V3"}
        }
    }


def test_text_that_is_no_instant_stays_text() -> None:
    spec = {"auto_operation_config": [op("tomorrow")]}
    assert plan(spec, auto_operation_config=[op("tomorrow")]).action is Action.NOOP
    assert plan(spec, auto_operation_config=[op("Tomorrow")]).action is Action.UPDATE


# --- set-like lists --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "live"),
    [
        ([1, 2], [2, 1, 2]),
        (["x", 1], [1, "x"]),
        ([1, 2.5], [2.5, 1.0]),
        ([{"a": 1, "b": 2}], [{"b": 2, "a": 1}, {"a": 1, "b": 2}]),
        ([[1, 2]], [[1.0, 2]]),
        ([True, 1], [1, True]),
    ],
)
def test_a_set_like_list_of_other_items_ignores_order_and_repeats(
    declared: list[Any], live: list[Any]
) -> None:
    result = plan({"tags": declared}, tags=live)
    assert result.action is Action.NOOP, result.changes


@pytest.mark.parametrize(
    ("declared", "live"),
    [
        ([2], [1, 2]),
        (["1"], [1]),
        ([True], [1]),
        ([2.5], [2]),
    ],
)
def test_a_set_like_list_of_other_items_with_other_members_is_a_change(
    declared: list[Any], live: list[Any]
) -> None:
    result = plan({"tags": declared}, tags=live)
    assert result.body == {"tags": declared}
    assert [c.kind for c in result.changes] == [ChangeKind.SET]


def test_a_set_like_list_of_objects_with_other_members_is_not_in_sync() -> None:
    # (planned through the canonical form only: the plan's SET row cannot list unhashable items)
    assert normalize.canon(("tags",), [{"a": 1}]) != normalize.canon(("tags",), [{"a": 2}])
    assert normalize.canon(("tags",), [{"a": 1}, {"a": 2}]) != normalize.canon(
        ("tags",), [{"a": 1}]
    )
    assert normalize.canon(("tags",), [[1, 2]]) != normalize.canon(("tags",), [[2, 1]])


def test_a_list_named_like_a_set_elsewhere_keeps_its_order() -> None:
    spec = {"asset_extra_meta": {HM: {"languages": ["EN", "CN"], "tags": [2, 1]}}}
    same = {HM: {"languages": ["EN", "CN"], "tags": [2, 1]}}
    assert plan(spec, asset_extra_meta=same).action is Action.NOOP
    for swapped in ({"languages": ["CN", "EN"]}, {"tags": [1, 2]}):
        live = {HM: {**same[HM], **swapped}}
        assert plan(spec, asset_extra_meta=live).action is Action.UPDATE, swapped


def test_a_block_set_like_list_of_numbers_ignores_order() -> None:
    spec = {"asset_extra_meta": {HM: {"device_names": [3, 1]}}}
    assert plan(spec, asset_extra_meta={HM: {"device_names": [1, 3, 3]}}).action is Action.NOOP


def test_fingerprint_of_a_set_like_list_ignores_order_repeats_and_number_form() -> None:
    one = {"asset_id": AID, "tags": [{"k": 1, "j": "é"}, 2, "b", "a", 2.0]}
    other = {"asset_id": AID, "tags": ["a", 2, {"j": "é", "k": 1.0}, "b"]}
    assert live_fingerprint(one) == live_fingerprint(other)
    # Objects order by their JSON text with non-ASCII characters kept as they are.
    assert normalize.canonical_json({"tags": [{"n": "é"}, {"n": "z"}, 1]}) == (
        '{"tags":[1,{"n":"z"},{"n":"é"}]}'
    )
    # The exact text is pinned: a saved plan's fingerprint must still match after an upgrade.
    assert normalize.canonical_json({"tags": one["tags"]}) == (
        '{"tags":[2,{"j":"é","k":1},"a","b"]}'
    )


# --- ordered lists, nested values --------------------------------------------------------------


def test_fields_the_service_adds_to_ordered_list_items_are_not_drift() -> None:
    spec = {"auto_operation_config": [op("2025-01-10T00:00:00Z")]}
    live = [op("2025-01-10T00:00:00Z", operation_status="DONE", retries=2.0)]
    assert plan(spec, auto_operation_config=live).action is Action.NOOP


def test_an_extra_live_item_in_an_ordered_list_is_a_change() -> None:
    spec = {"auto_operation_config": [op("2025-01-10T00:00:00Z")]}
    live = [op("2025-01-10T00:00:00Z"), {"operation": "DELETE", "when": {"n": 1.0}}]
    result = plan(spec, auto_operation_config=live)
    assert result.action is Action.UPDATE
    assert result.body is not None and len(result.body["auto_operation_config"]) == 1


def test_ordered_lists_of_lists_compare_in_canonical_form() -> None:
    spec = {"asset_extra_meta": {"ppt_meta": {"pages": [[1, 2.5], [{"a": 1}]]}}}
    same = {"ppt_meta": {"pages": [[1.0, 2.5], [{"a": 1.0}]]}}
    assert plan(spec, "PPT", asset_extra_meta=same).action is Action.NOOP
    reordered = {"ppt_meta": {"pages": [[2.5, 1], [{"a": 1}]]}}
    assert plan(spec, "PPT", asset_extra_meta=reordered).action is Action.UPDATE


def test_nested_maps_compare_in_canonical_form() -> None:
    spec = {"asset_extra_meta": {VM: {"speed_ratio": 1, "external_voice_meta": {"rate": 2}}}}
    live = {VM: {"speed_ratio": 1.0, "external_voice_meta": {"rate": 2.0, "extra": {"x": None}}}}
    assert plan(spec, "VOICE_MODEL", asset_extra_meta=live).action is Action.NOOP
    other = {VM: {"speed_ratio": 1.5, "external_voice_meta": {"rate": 2.0}}}
    assert plan(spec, "VOICE_MODEL", asset_extra_meta=other).action is Action.UPDATE


def test_a_number_is_not_a_boolean_nested_or_not() -> None:
    spec = {"asset_extra_meta": {HM: {"support_live": True, "deep": {"flag": True}}}}
    same = {HM: {"support_live": True, "deep": {"flag": True}}}
    assert plan(spec, asset_extra_meta=same).action is Action.NOOP
    numbers = {HM: {"support_live": 1, "deep": {"flag": 1}}}
    assert plan(spec, asset_extra_meta=numbers).action is Action.UPDATE


def test_an_empty_map_declared_for_an_absent_live_map_is_no_change() -> None:
    spec: dict[str, Any] = {"asset_extra_meta": {VM: {"external_voice_meta": {}}}}
    assert plan(spec, "VOICE_MODEL", asset_extra_meta={VM: {}}).action is Action.NOOP
    assert plan(spec, "VOICE_MODEL").action is Action.NOOP


def test_a_live_value_of_another_shape_is_a_change_not_a_crash() -> None:
    spec = {"asset_extra_meta": {HM: {"model_resolution": "1080P", "action_tag_map": ["a"]}}}
    live = {HM: {"model_resolution": {"value": "1080P"}, "action_tag_map": "a"}}
    assert plan(spec, asset_extra_meta=live).action is Action.UPDATE
    shaped = {"asset_extra_meta": {HM: {"model_resolution": {"value": "1080P"}}}}
    assert plan(shaped, asset_extra_meta={HM: {"model_resolution": "1080P"}}).action is (
        Action.UPDATE
    )


def test_a_declared_string_list_is_not_a_live_string() -> None:
    spec = {"asset_extra_meta": {HM: {"action_tag_map": ["a", "b"]}}}
    assert plan(spec, asset_extra_meta={HM: {"action_tag_map": "ab"}}).action is Action.UPDATE
    assert plan(spec, asset_extra_meta={HM: {"action_tag_map": ["a", "b"]}}).action is Action.NOOP


# --- absent values ---------------------------------------------------------------------------


def test_an_absent_realtime_voice_flag_means_true() -> None:
    on = {"asset_extra_meta": {VM: {"is_realtime_voice": True}}}
    off = {"asset_extra_meta": {VM: {"is_realtime_voice": False}}}
    assert plan(on, "VOICE_MODEL", asset_extra_meta={VM: {}}).action is Action.NOOP
    result = plan(off, "VOICE_MODEL", asset_extra_meta={VM: {"sex": "MALE"}})
    assert result.body == {"asset_extra_meta": {VM: {"sex": "MALE", "is_realtime_voice": False}}}


def test_an_absent_flag_that_defaults_to_false_is_no_change_when_declared_false() -> None:
    spec = {"asset_extra_meta": {HM: {"support_live": False}}}
    assert plan(spec, asset_extra_meta={HM: {}}).action is Action.NOOP
    assert plan({"asset_extra_meta": {HM: {"support_live": True}}}, asset_extra_meta={HM: {}}).body


# --- system properties -------------------------------------------------------------------------


def test_system_properties_compare_per_declared_key_in_any_order() -> None:
    live = [
        {"key": "CREATED_BY_PLATFORM", "value": "Yes"},
        {"value": "orphan"},
        {"key": "BACKGROUND_IMG", "value": "No"},
    ]
    spec = {"system_properties": {"BACKGROUND_IMG": "No", "MATERIAL_IMG": None}}
    assert plan(spec, system_properties=live).action is Action.NOOP
    changed = plan({"system_properties": {"BACKGROUND_IMG": "Yes"}}, system_properties=live)
    assert changed.body == {
        "system_properties": [{"action": "ADD", "key": "BACKGROUND_IMG", "value": "Yes"}]
    }


def test_structured_system_property_values_compare_in_canonical_form() -> None:
    live = [{"key": "LAYOUT", "value": {"w": 1.0, "parts": [2.0]}}]
    spec = {"system_properties": {"LAYOUT": {"w": 1, "parts": [2]}}}
    assert plan(spec, system_properties=live).action is Action.NOOP
    assert live_fingerprint({"system_properties": live}) == live_fingerprint(
        {"system_properties": [{"key": "LAYOUT", "value": {"parts": [2], "w": 1}}]}
    )


def test_fingerprint_of_system_properties_ignores_their_order() -> None:
    one = [{"key": "B", "value": "Yes"}, {"key": "A", "value": 1.0}]
    other = [{"key": "A", "value": 1}, {"key": "B", "value": "Yes"}]
    assert live_fingerprint({"system_properties": one}) == live_fingerprint(
        {"system_properties": other}
    )
    assert live_fingerprint({"system_properties": one}) != live_fingerprint(
        {"system_properties": [{"key": "A", "value": 2}]}
    )


# --- what the fingerprint hashes ---------------------------------------------------------------


def test_canonical_json_of_a_plain_value() -> None:
    assert normalize.canonical_json("2025-01-10T08:00:00+08:00") == '"2025-01-10T08:00:00+08:00"'
    assert normalize.canonical_json(3.0) == "3"
    assert normalize.canonical_json(None) == "null"
    assert normalize.canonical_json([None, 1.0, {"b": None, "a": 2.0}]) == '[null,1,{"a":2}]'


def test_is_empty_means_nothing_declared() -> None:
    nothing: tuple[Any, ...] = (None, "", [], {}, ())
    assert all(normalize.is_empty(v) for v in nothing)
    assert not any(normalize.is_empty(v) for v in ("x", [0], {"a": None}, 0, False, (1,)))
