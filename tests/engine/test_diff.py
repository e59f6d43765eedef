"""The field semantics of docs/field-semantics.md, one rule at a time, on plain dicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.emulator import samples
from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.fingerprint import live_fingerprint, write_only_fingerprint
from reconciler.engine.plan import Action, ChangeKind, FieldChange
from reconciler.engine.records import Record

AID = "93769b5a-c8c6-4692-9c95-53933a1f0c93"


def live_asset(**overrides: Any) -> dict[str, Any]:
    asset = samples.human_model(AID)
    asset["asset_extra_meta"]["human_model_2d_meta"]["is_flexus"] = True
    asset.update(overrides)
    return asset


def plan_for(spec: dict[str, Any], live: dict[str, Any] | None = None, **kw: Any) -> Any:
    return diff_asset(
        Desired(AID, spec, source="m.yaml:1:1"),
        live_asset() if live is None else live,
        **kw,
    )


def change(plan: Any, dotted: str) -> FieldChange:
    matches = [c for c in plan.changes if c.dotted == dotted]
    assert matches, f"no change at {dotted}: {[c.dotted for c in plan.changes]}"
    return matches[0]


# --- rule 1: managed = present ----------------------------------------------------------------


def test_in_sync_asset_has_no_body_and_counts_unchanged_fields() -> None:
    plan = plan_for({"asset_name": "Sara Model", "tags": ["NEWS", "FEMALE"], "asset_order": 3})
    assert plan.action is Action.NOOP
    assert plan.body is None
    assert plan.changes == []
    assert plan.unchanged == 3


def test_fields_left_out_are_never_changed() -> None:
    live = live_asset(asset_description="something else entirely", tags=["X"])
    plan = plan_for({"asset_name": "New name"}, live)
    assert plan.body == {"asset_name": "New name"}
    assert [c.dotted for c in plan.changes] == ["asset_name"]
    assert change(plan, "asset_name").kind is ChangeKind.UPDATE
    assert change(plan, "asset_name").before == "Sara Model"


def test_null_in_manifest_means_unmanaged() -> None:
    plan = plan_for({"asset_name": "Sara Model", "asset_description": None})
    assert plan.action is Action.NOOP


def test_clearing_is_explicit_and_reported_as_remove() -> None:
    plan = plan_for({"asset_description": ""})
    assert plan.body == {"asset_description": ""}
    assert change(plan, "asset_description").kind is ChangeKind.REMOVE


def test_scalar_absent_in_live_is_an_add() -> None:
    live = live_asset()
    del live["asset_order"]
    plan = plan_for({"asset_order": 7}, live)
    assert change(plan, "asset_order").kind is ChangeKind.ADD
    assert plan.body == {"asset_order": 7}


# --- rule 4: set-like and ordered lists --------------------------------------------------------


def test_reordered_tags_are_no_change() -> None:
    assert plan_for({"tags": ["FEMALE", "NEWS"]}).action is Action.NOOP


def test_duplicate_set_items_are_no_change() -> None:
    assert plan_for({"tags": ["FEMALE", "NEWS", "NEWS"]}).action is Action.NOOP


def test_set_change_lists_added_and_removed_and_sends_manifest_order() -> None:
    plan = plan_for({"tags": ["SPORTS", "NEWS"]})
    tags = change(plan, "tags")
    assert tags.kind is ChangeKind.SET
    assert tags.added == ("SPORTS",)
    assert tags.removed == ("FEMALE",)
    assert plan.body == {"tags": ["SPORTS", "NEWS"]}


def test_set_like_list_inside_block_ignores_order() -> None:
    spec = {"asset_extra_meta": {"human_model_2d_meta": {"device_names": ["d2", "d1"]}}}
    assert plan_for(spec).action is Action.NOOP


def test_ordered_list_keeps_order() -> None:
    ops = [
        {"operation": "BLOCK", "operation_time": "2025-01-10T00:00:00Z"},
        {"operation": "DELETE", "operation_time": "2025-02-10T00:00:00Z"},
    ]
    live = live_asset(auto_operation_config=ops)
    assert plan_for({"auto_operation_config": ops}, live).action is Action.NOOP
    plan = plan_for({"auto_operation_config": list(reversed(ops))}, live)
    assert plan.action is Action.UPDATE
    assert change(plan, "auto_operation_config").kind is ChangeKind.UPDATE
    assert plan.body == {"auto_operation_config": list(reversed(ops))}


def test_ordered_list_items_ignore_fields_the_service_adds() -> None:
    live_ops = [{"operation": "BLOCK", "operation_time": "2025-01-10T00:00:00Z", "job": "j1"}]
    live = live_asset(auto_operation_config=live_ops)
    spec = {
        "auto_operation_config": [
            {"operation": "BLOCK", "operation_time": live_ops[0]["operation_time"]}
        ]
    }
    assert plan_for(spec, live).action is Action.NOOP


# --- rule 5: system_properties ---------------------------------------------------------------


def test_system_properties_map_in_sync_whatever_the_live_order() -> None:
    live = live_asset(
        system_properties=[
            {"key": "CREATED_BY_PLATFORM", "value": "Yes"},
            {"key": "BACKGROUND_IMG", "value": "Yes"},
        ]
    )
    spec = {"system_properties": {"BACKGROUND_IMG": "Yes", "CREATED_BY_PLATFORM": "Yes"}}
    assert plan_for(spec, live).action is Action.NOOP


def test_system_properties_are_managed_per_key() -> None:
    spec = {"system_properties": {"BACKGROUND_IMG": "No", "MATERIAL_IMG": "Yes"}}
    plan = plan_for(spec)
    # CREATED_BY_PLATFORM is live but not named: it is not touched.
    assert plan.body == {
        "system_properties": [
            {"action": "ADD", "key": "BACKGROUND_IMG", "value": "No"},
            {"action": "ADD", "key": "MATERIAL_IMG", "value": "Yes"},
        ]
    }
    kinds = {c.dotted: c.kind for c in change(plan, "system_properties").children}
    assert kinds == {
        "system_properties.BACKGROUND_IMG": ChangeKind.UPDATE,
        "system_properties.MATERIAL_IMG": ChangeKind.ADD,
    }


def test_a_null_system_property_deletes_that_key_only() -> None:
    plan = plan_for({"system_properties": {"CREATED_BY_PLATFORM": None, "MATERIAL_IMG": None}})
    assert plan.body == {
        "system_properties": [{"action": "DELETE", "key": "CREATED_BY_PLATFORM", "value": "Yes"}]
    }
    (child,) = change(plan, "system_properties").children
    assert child.kind is ChangeKind.REMOVE
    assert child.dotted == "system_properties.CREATED_BY_PLATFORM"


def test_a_null_system_property_that_live_lacks_is_in_sync() -> None:
    assert plan_for({"system_properties": {"MATERIAL_IMG": None}}).action is Action.NOOP


def test_empty_system_properties_map_touches_nothing() -> None:
    assert plan_for({"system_properties": {}}).action is Action.NOOP


# --- rule 6: the extra-meta block must match the type -------------------------------------------


def test_block_for_another_type_is_an_error_naming_both() -> None:
    plan = plan_for({"asset_extra_meta": {"voice_model_meta": {"speed_ratio": 1.5}}})
    assert plan.action is Action.ERROR
    assert plan.body is None
    (message,) = plan.errors
    assert "voice_model_meta" in message
    assert "HUMAN_MODEL_2D" in message
    assert "human_model_2d_meta" in message


def test_block_is_checked_against_declared_type_when_given() -> None:
    spec = {"asset_type": "MATERIAL", "asset_extra_meta": {"human_model_2d_meta": {}}}
    plan = plan_for(spec)
    assert plan.action is Action.ERROR
    assert "material_meta" in plan.errors[0]


def test_read_only_field_in_manifest_is_an_error() -> None:
    spec = {
        "asset_extra_meta": {"voice_model_meta": {"voice_capability": {"is_support_srt": True}}}
    }
    plan = plan_for(spec, live_asset(asset_type="VOICE_MODEL"))
    assert plan.action is Action.ERROR
    assert "read-only" in plan.errors[0]


# --- rule 7: nested objects sent whole --------------------------------------------------------


def test_changed_nested_field_sends_whole_block_filled_from_the_raw_live_block() -> None:
    live = live_asset()
    live["asset_extra_meta"]["human_model_2d_meta"]["future_field_from_service"] = "x"
    live["asset_extra_meta"]["video_meta"] = {"width": 1}
    spec = {"asset_extra_meta": {"human_model_2d_meta": {"support_live": True}}}
    plan = plan_for(spec, live)
    # Every live key stays, including one this tool does not know; other blocks are not sent.
    assert plan.body == {
        "asset_extra_meta": {
            "human_model_2d_meta": {
                "support_live": True,
                "model_resolution": "1080P",
                "model_version": "V3",
                "device_names": ["d1", "d2"],
                "is_flexus": True,
                "future_field_from_service": "x",
            }
        }
    }
    block = change(plan, "asset_extra_meta.human_model_2d_meta")
    assert [(c.dotted, c.before, c.after) for c in block.children] == [
        ("asset_extra_meta.human_model_2d_meta.support_live", False, True)
    ]


def test_read_only_fields_of_a_block_are_dropped_from_the_body() -> None:
    live = live_asset(
        asset_type="VOICE_MODEL",
        asset_extra_meta={
            "voice_model_meta": {
                "speed_ratio": 1,
                "sex": "FEMALE",
                "voice_capability": {"is_support_srt": True},
            }
        },
    )
    plan = plan_for({"asset_extra_meta": {"voice_model_meta": {"speed_ratio": 1.5}}}, live)
    assert plan.body == {
        "asset_extra_meta": {"voice_model_meta": {"speed_ratio": 1.5, "sex": "FEMALE"}}
    }


def test_block_absent_in_live_is_added_with_declared_fields_only() -> None:
    live = live_asset(asset_extra_meta=None)
    plan = plan_for({"asset_extra_meta": {"human_model_2d_meta": {"support_live": True}}}, live)
    assert plan.body == {"asset_extra_meta": {"human_model_2d_meta": {"support_live": True}}}
    assert change(plan, "asset_extra_meta.human_model_2d_meta").kind is ChangeKind.ADD


def test_unchanged_counts_leaves_of_a_partly_changed_block() -> None:
    spec = {
        "asset_name": "Sara Model",
        "asset_extra_meta": {
            "human_model_2d_meta": {"support_live": True, "model_resolution": "1080P"}
        },
    }
    assert plan_for(spec).unchanged == 2


# --- rule 8: normalisation ---------------------------------------------------------------------


def test_integer_and_float_are_equal() -> None:
    live = live_asset(
        asset_type="VOICE_MODEL", asset_extra_meta={"voice_model_meta": {"speed_ratio": 1}}
    )
    spec = {"asset_extra_meta": {"voice_model_meta": {"speed_ratio": 1.0}}}
    assert plan_for(spec, live).action is Action.NOOP
    assert plan_for({"asset_order": 3.0}).action is Action.NOOP


def test_boolean_is_not_equal_to_one() -> None:
    live = live_asset(asset_extra_meta={"human_model_2d_meta": {"support_live": 1}})
    spec = {"asset_extra_meta": {"human_model_2d_meta": {"support_live": True}}}
    assert plan_for(spec, live).action is Action.UPDATE


def test_rfc3339_times_compare_as_instants() -> None:
    live = live_asset(
        auto_operation_config=[{"operation": "BLOCK", "operation_time": "2025-01-10T00:00:00Z"}]
    )
    same_instant = [{"operation": "BLOCK", "operation_time": "2025-01-10T08:00:00+08:00"}]
    later = [{"operation": "BLOCK", "operation_time": "2025-01-10T08:00:00Z"}]
    assert plan_for({"auto_operation_config": same_instant}, live).action is Action.NOOP
    assert plan_for({"auto_operation_config": later}, live).action is Action.UPDATE


def test_strings_compare_exactly() -> None:
    assert plan_for({"asset_name": "sara model"}).action is Action.UPDATE
    assert plan_for({"asset_name": "Sara Model "}).action is Action.UPDATE


@pytest.mark.parametrize(
    ("field", "empty"),
    [
        ("tags", []),
        ("asset_description", ""),
        ("system_properties", {}),
        ("supported_service", []),
        ("auto_operation_config", []),
    ],
)
@pytest.mark.parametrize("live_value", ["absent", None])
def test_absent_live_field_equals_empty_manifest_value(
    field: str, empty: Any, live_value: Any
) -> None:
    live = live_asset()
    if live_value == "absent":
        live.pop(field, None)
    else:
        live[field] = None
    plan = plan_for({field: empty}, live)
    assert plan.action is Action.NOOP
    assert plan.unchanged == 1


def test_absent_boolean_equals_documented_default_false() -> None:
    live = live_asset(asset_extra_meta={"human_model_2d_meta": {"model_resolution": "4K"}})
    spec = {"asset_extra_meta": {"human_model_2d_meta": {"support_live": False}}}
    assert plan_for(spec, live).action is Action.NOOP
    assert plan_for({"asset_extra_meta": {}}, live_asset(asset_extra_meta=None)).action is (
        Action.NOOP
    )


def test_absent_number_is_not_assumed_to_be_its_default() -> None:
    live = live_asset(asset_type="VOICE_MODEL", asset_extra_meta={"voice_model_meta": {}})
    plan = plan_for({"asset_extra_meta": {"voice_model_meta": {"speed_ratio": 1}}}, live)
    assert plan.action is Action.UPDATE


# --- rule 3: write-only ----------------------------------------------------------------------


REVIEW = {"review_config": {"no_need_review": True}}
SHARED = {
    "shared_config": {
        "shared_type": "SHARED",
        "expire_time": "2026-01-01T00:00:00Z",
        "allowed_project_ids": ["a", "b"],
    }
}


def test_write_only_without_record_is_sent_and_never_in_sync() -> None:
    plan = plan_for({**REVIEW, "asset_name": "Sara Model"})
    assert plan.action is Action.UPDATE
    assert plan.body == REVIEW
    wo = change(plan, "review_config")
    assert wo.kind is ChangeKind.WRITE_ONLY
    assert wo.before is None
    assert plan.write_only_fingerprint == write_only_fingerprint(REVIEW)


def test_write_only_unchanged_since_record_is_not_sent_but_listed() -> None:
    record = Record(write_only_fingerprint({**REVIEW, **SHARED}), "2025-03-01T10:00:00Z")
    plan = plan_for({**REVIEW, **SHARED}, write_only_record=record)
    assert plan.action is Action.NOOP
    assert plan.body is None
    assert plan.write_only == ["review_config", "shared_config"]
    assert plan.write_only_applied_at == "2025-03-01T10:00:00Z"
    assert plan.write_only_fingerprint is None


def test_changed_write_only_value_reaches_the_body() -> None:
    record = Record(write_only_fingerprint({**REVIEW, **SHARED}), "2025-03-01T10:00:00Z")
    changed = copy.deepcopy(SHARED)
    changed["shared_config"]["allowed_project_ids"].append("c")
    plan = plan_for({**REVIEW, **changed}, write_only_record=record)
    assert plan.body == changed
    assert plan.write_only == ["review_config"]
    assert change(plan, "shared_config").kind is ChangeKind.WRITE_ONLY
    assert plan.write_only_fingerprint == write_only_fingerprint({**REVIEW, **changed})


def test_write_only_reorder_and_time_offset_are_not_changes() -> None:
    record = Record(write_only_fingerprint(SHARED), "2025-03-01T10:00:00Z")
    same = copy.deepcopy(SHARED)
    same["shared_config"]["allowed_project_ids"] = ["b", "a"]
    same["shared_config"]["expire_time"] = "2026-01-01T08:00:00+08:00"
    assert plan_for(same, write_only_record=record).body is None


# --- rule 9: missing and blocked ------------------------------------------------------------


def test_missing_asset_is_an_error_row_with_the_service_code() -> None:
    plan = diff_asset(Desired(AID, {"asset_name": "x"}), None, project_id="p1")
    assert plan.action is Action.ERROR
    assert plan.error_code == "MSS.10001001"
    assert AID in plan.errors[0]
    assert plan.body is None


@pytest.mark.parametrize("state", ["CREATING", "FAILED", "DELETING", "DELETED", "BLOCK"])
def test_non_updatable_state_is_blocked_with_reason(state: str) -> None:
    live = live_asset(asset_state=state, block_reason_code="R42")
    plan = plan_for({"asset_name": "Other"}, live)
    assert plan.action is Action.BLOCKED
    assert plan.body is None
    assert state in plan.errors[0]
    assert [c.dotted for c in plan.changes] == ["asset_name"]


# --- names, fingerprints --------------------------------------------------------------------


def test_name_is_declared_name_else_live_name() -> None:
    assert plan_for({"asset_name": "New"}).name == "New"
    assert plan_for({"tags": []}).name == "Sara Model"


def test_live_fingerprint_ignores_volatile_fields_and_order() -> None:
    a = live_asset()
    b = live_asset(
        update_time="2030-01-01T00:00:00Z",
        files=[{"download_url": "https://x/1?Signature=other"}],
        tags=["FEMALE", "NEWS"],
        asset_order=3.0,
    )
    assert live_fingerprint(a) == live_fingerprint(b)
    assert live_fingerprint(a) != live_fingerprint(live_asset(asset_description="edited"))
    assert plan_for({"asset_name": "x"}).live_fingerprint == live_fingerprint(a)


def test_plan_json_round_trips() -> None:
    from reconciler.engine.plan import AssetPlan

    plan = plan_for({"asset_name": "X", "tags": ["A"], **REVIEW, "system_properties": {}})
    assert AssetPlan.from_json(plan.to_json()).to_json() == plan.to_json()
