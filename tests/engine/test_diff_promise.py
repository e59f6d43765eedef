"""The plan a user reads and the body apply sends, pinned where a quiet regression would hide.

Each test plans one asset and checks what ``plan --json`` shows (``AssetPlan.to_json``: the
changes with their before and after values, the unchanged count, the row's identity) and the PUT
body, in the cases the rest of the suite leaves out: a nested ``key: null``, system properties
mixing deleted, equal and changed keys in any order, changes listed in the manifest's order.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.plan import Action, AssetPlan
from reconciler.engine.records import Record

AID = "a-promise"
HM = "human_model_2d_meta"
VM = "voice_model_meta"


def live_asset(asset_type: str = "HUMAN_MODEL_2D", **fields: Any) -> dict[str, Any]:
    return {"asset_id": AID, "asset_type": asset_type, "asset_state": "ACTIVED", **fields}


def plan(spec: dict[str, Any], live: dict[str, Any] | None = None, **options: Any) -> AssetPlan:
    desired = Desired(AID, spec, app_user_id="user-7", source="manifests/a.yaml:3:1")
    return diff_asset(desired, live_asset() if live is None else live, **options)


def shown(row: AssetPlan) -> list[dict[str, Any]]:
    """The changes as ``plan --json`` shows them."""
    changes: list[dict[str, Any]] = row.to_json()["changes"]
    return changes


# --- key: null ---------------------------------------------------------------------------------


def test_a_nested_null_leaves_the_live_value_alone() -> None:
    live = live_asset(asset_extra_meta={HM: {"model_version": "V3", "support_live": False}})
    spec = {"asset_extra_meta": {HM: {"model_version": None, "support_live": True}}}
    row = plan(spec, live)
    assert row.body == {"asset_extra_meta": {HM: {"model_version": "V3", "support_live": True}}}
    assert shown(row) == [
        {
            "path": f"asset_extra_meta.{HM}",
            "kind": "update",
            "before": {"model_version": "V3", "support_live": False},
            "after": {"model_version": "V3", "support_live": True},
            "children": [
                {
                    "path": f"asset_extra_meta.{HM}.support_live",
                    "kind": "update",
                    "before": False,
                    "after": True,
                }
            ],
        }
    ]


def test_a_null_nested_deeper_is_left_alone_too() -> None:
    live = live_asset(
        "VOICE_MODEL",
        asset_extra_meta={VM: {"external_voice_meta": {"provider": "MOBVOI", "voice": "v1"}}},
    )
    spec = {"asset_extra_meta": {VM: {"external_voice_meta": {"provider": None, "voice": "v2"}}}}
    row = plan(spec, live)
    sent = {"external_voice_meta": {"provider": "MOBVOI", "voice": "v2"}}
    assert row.body == {"asset_extra_meta": {VM: sent}}


# --- system properties -------------------------------------------------------------------------

LIVE_PROPS = [
    {"key": "CREATED_BY_PLATFORM", "value": "Yes"},
    {"key": "IS_CONTROLLED", "value": "YES"},
    {"key": "BACKGROUND_IMG", "value": "No"},
]


@pytest.mark.parametrize(
    "order",
    [
        ["MATERIAL_IMG", "IS_CONTROLLED", "CREATED_BY_PLATFORM", "BACKGROUND_IMG", "PHOTO_VIDEO"],
        ["IS_CONTROLLED", "MATERIAL_IMG", "BACKGROUND_IMG", "CREATED_BY_PLATFORM", "PHOTO_VIDEO"],
        ["CREATED_BY_PLATFORM", "BACKGROUND_IMG", "PHOTO_VIDEO", "MATERIAL_IMG", "IS_CONTROLLED"],
    ],
    ids=["absent-null-first", "deleted-first", "equal-first"],
)
def test_system_properties_mixing_null_equal_and_changed_keys_in_any_order(
    order: list[str],
) -> None:
    values = {
        "MATERIAL_IMG": None,  # null and absent from live: nothing to do
        "IS_CONTROLLED": None,  # null and present: DELETE
        "CREATED_BY_PLATFORM": "Yes",  # equal: not sent
        "BACKGROUND_IMG": "Yes",  # differs: ADD
        "PHOTO_VIDEO": "No",  # new: ADD
    }
    spec = {"system_properties": {key: values[key] for key in order}}
    row = plan(spec, live_asset(system_properties=LIVE_PROPS))
    ops = {
        "IS_CONTROLLED": {"action": "DELETE", "key": "IS_CONTROLLED", "value": "YES"},
        "BACKGROUND_IMG": {"action": "ADD", "key": "BACKGROUND_IMG", "value": "Yes"},
        "PHOTO_VIDEO": {"action": "ADD", "key": "PHOTO_VIDEO", "value": "No"},
    }
    assert row.body == {"system_properties": [ops[key] for key in order if key in ops]}
    children = {
        "IS_CONTROLLED": ("remove", "YES", None),
        "BACKGROUND_IMG": ("update", "No", "Yes"),
        "PHOTO_VIDEO": ("add", None, "No"),
    }
    assert shown(row) == [
        {
            "path": "system_properties",
            "kind": "update",
            # What live holds for the declared keys (the absent ones are not in it).
            "before": {
                "IS_CONTROLLED": "YES",
                "CREATED_BY_PLATFORM": "Yes",
                "BACKGROUND_IMG": "No",
            },
            "after": spec["system_properties"],
            "children": [
                {
                    "path": f"system_properties.{key}",
                    "kind": children[key][0],
                    "before": children[key][1],
                    "after": children[key][2],
                }
                for key in order
                if key in children
            ],
        }
    ]
    # Two declared keys need nothing (the absent null and the equal one).
    assert row.unchanged == 2


def test_system_property_values_compare_in_canonical_form() -> None:
    layout = {"w": 1.0, "box": {"h": 2.0}}
    live = live_asset(system_properties=[{"key": "LAYOUT", "value": layout}])
    same = {"w": 1, "box": {"h": 2}}
    assert plan({"system_properties": {"LAYOUT": same}}, live).action is Action.NOOP
    other = {"w": 2, "box": {"h": 2}}
    row = plan({"system_properties": {"LAYOUT": other}}, live)
    assert row.body == {"system_properties": [{"action": "ADD", "key": "LAYOUT", "value": other}]}
    assert shown(row)[0]["before"] == {"LAYOUT": layout}


def test_only_system_properties_in_sync_count_as_unchanged() -> None:
    spec = {"system_properties": {"CREATED_BY_PLATFORM": "Yes", "BACKGROUND_IMG": "No"}}
    row = plan(spec, live_asset(system_properties=LIVE_PROPS))
    assert row.action is Action.NOOP and row.unchanged == 2


# --- what the plan shows for plain fields and blocks ----------------------------------------------


def test_plain_field_changes_show_before_and_after_in_manifest_order() -> None:
    live = live_asset(asset_name="Old", tags=["NEWS"], asset_order=2)
    spec = {"tags": ["SPORTS", "NEWS"], "asset_name": "New", "asset_description": "d"}
    row = plan(spec, live)
    assert shown(row) == [
        {
            "path": "tags",
            "kind": "set",
            "before": ["NEWS"],
            "after": ["SPORTS", "NEWS"],
            "added": ["SPORTS"],
            "removed": [],
        },
        {"path": "asset_name", "kind": "update", "before": "Old", "after": "New"},
        {"path": "asset_description", "kind": "add", "before": None, "after": "d"},
    ]
    assert list(row.body or {}) == ["tags", "asset_name", "asset_description"]


def test_a_write_only_field_declared_first_is_listed_and_sent_first() -> None:
    spec = {"review_config": {"no_need_review": True}, "asset_name": "B", "tags": ["X"]}
    row = plan(spec, live_asset(asset_name="A"))
    assert [c["path"] for c in shown(row)] == ["review_config", "asset_name", "tags"]
    assert list(row.body or {}) == ["review_config", "asset_name", "tags"]


def test_filling_an_empty_live_value_shows_what_live_held() -> None:
    row = plan({"asset_description": "d"}, live_asset(asset_description=""))
    assert shown(row) == [{"path": "asset_description", "kind": "add", "before": "", "after": "d"}]


def test_clearing_a_field_is_shown_as_a_removal_with_its_old_value() -> None:
    row = plan({"asset_description": ""}, live_asset(asset_description="old"))
    assert shown(row) == [
        {"path": "asset_description", "kind": "remove", "before": "old", "after": ""}
    ]
    assert row.body == {"asset_description": ""}


def test_an_added_block_is_shown_as_added_with_its_leaves() -> None:
    spec = {"asset_extra_meta": {HM: {"support_live": True}}}
    row = plan(spec, live_asset())
    assert shown(row) == [
        {
            "path": f"asset_extra_meta.{HM}",
            "kind": "add",
            "before": None,
            "after": {"support_live": True},
            "children": [
                {
                    "path": f"asset_extra_meta.{HM}.support_live",
                    "kind": "add",
                    "before": None,
                    "after": True,
                }
            ],
        }
    ]
    assert row.unchanged == 0


def test_changed_leaves_of_a_block_are_listed_in_manifest_order_at_every_depth() -> None:
    live_block = {
        "sex": "MALE",
        "speed_ratio": 1,
        "languages": ["CN"],
        "external_voice_meta": {"voice": "a", "provider": "MOBVOI", "keep": 1},
    }
    live = live_asset("VOICE_MODEL", asset_extra_meta={VM: live_block})
    declared = {
        "speed_ratio": 2,
        "external_voice_meta": {"voice": "b", "provider": "HUAWEI_EI", "keep": 1},
        "languages": ["CN", "EN"],
        "sex": "FEMALE",
    }
    row = plan({"asset_extra_meta": {VM: declared}}, live)
    (block,) = shown(row)
    assert block["kind"] == "update"
    assert [(c["path"], c["before"], c["after"]) for c in block["children"]] == [
        (f"asset_extra_meta.{VM}.speed_ratio", 1, 2),
        (f"asset_extra_meta.{VM}.external_voice_meta.voice", "a", "b"),
        (f"asset_extra_meta.{VM}.external_voice_meta.provider", "MOBVOI", "HUAWEI_EI"),
        (f"asset_extra_meta.{VM}.languages", ["CN"], ["CN", "EN"]),
        (f"asset_extra_meta.{VM}.sex", "MALE", "FEMALE"),
    ]
    # Five declared leaves changed, one (external_voice_meta.keep) did not.
    assert row.unchanged == 1


def test_nested_changes_of_every_kind_are_listed_in_manifest_order() -> None:
    # Changed types and changed values interleaved, so that no grouping by kind gives this order.
    live_meta = {"a": "1", "b": "old", "d": {"deep": 1}}
    live = live_asset("VOICE_MODEL", asset_extra_meta={VM: {"external_voice_meta": live_meta}})
    declared = {"a": 1, "b": "new", "c": "added", "d": {"deep": 2}}
    row = plan({"asset_extra_meta": {VM: {"external_voice_meta": declared}}}, live)
    (block,) = shown(row)
    base = f"asset_extra_meta.{VM}.external_voice_meta"
    assert [c["path"] for c in block["children"]] == [
        f"{base}.a",
        f"{base}.b",
        f"{base}.c",
        f"{base}.d.deep",
    ]


def test_unchanged_counts_every_declared_leaf_in_sync() -> None:
    live_block = {"sex": "MALE", "external_voice_meta": {"provider": "MOBVOI", "voice": "v"}}
    live = live_asset("VOICE_MODEL", asset_name="A", asset_extra_meta={VM: live_block})
    spec = {"asset_name": "A", "asset_extra_meta": {VM: live_block}}
    assert plan(spec, live).unchanged == 4
    spec = {"asset_name": "B", "asset_extra_meta": {VM: live_block}, "tags": []}
    assert plan(spec, live).unchanged == 4


def test_a_boolean_is_not_a_number_inside_a_list() -> None:
    live = live_asset(asset_extra_meta={HM: {"flags": [1, "x"]}})
    row = plan({"asset_extra_meta": {HM: {"flags": [True, "x"]}}}, live)
    assert row.action is Action.UPDATE
    assert row.body == {"asset_extra_meta": {HM: {"flags": [True, "x"]}}}


# --- write-only fields --------------------------------------------------------------------------


def test_a_write_only_change_shows_the_value_sent_and_the_record_is_kept() -> None:
    spec = {"asset_name": "A", "review_config": {"no_need_review": True}}
    row = plan(spec, live_asset(asset_name="A"))
    assert shown(row) == [
        {
            "path": "review_config",
            "kind": "write-only",
            "before": None,
            "after": spec["review_config"],
        }
    ]
    assert row.write_only_record is None
    record = Record("fp-old", "2025-01-01T00:00:00Z")
    again = plan(spec, live_asset(asset_name="A"), write_only_record=record)
    assert again.to_json()["write_only_record"] == "fp-old@2025-01-01T00:00:00Z"


# --- the row: what apply's staleness checks and fresh read rely on --------------------------------


def test_the_row_carries_identity_source_and_how_live_was_read() -> None:
    live = live_asset(asset_name="Old")
    row = plan({"asset_name": "New"}, live)
    shown_row = row.to_json()
    assert shown_row["asset_id"] == AID
    assert shown_row["source"] == "manifests/a.yaml:3:1"
    assert shown_row["app_user_id"] == "user-7"
    assert shown_row["live_read"] == "list"
    assert row.live == live
    assert plan({"asset_name": "New"}, live, live_read="show").live_read == "show"


def test_a_missing_asset_names_the_project_when_known() -> None:
    desired = Desired(AID, {"asset_name": "x"})
    with_project = diff_asset(desired, None, project_id="p-9")
    assert with_project.errors == [
        f"asset {AID} does not exist in project p-9 (MSS.10001001: Asset not found)"
    ]
    assert diff_asset(desired, None).errors == [
        f"asset {AID} does not exist (MSS.10001001: Asset not found)"
    ]


def test_a_block_on_a_type_without_one_is_refused_with_a_hint() -> None:
    spec = {"asset_extra_meta": {HM: {"support_live": True}}}
    row = plan(spec, live_asset("BUSINESS_CARD_TEMPLET"))
    assert row.action is Action.ERROR
    assert row.errors == [
        f"asset_extra_meta.{HM} does not apply to an asset of type BUSINESS_CARD_TEMPLET; "
        "it has no writable block"
    ]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"block_reason_code": "ILLEGAL", "reason": "other"}, " (reason: ILLEGAL)"),
        ({"reason": "REVIEW"}, " (reason: REVIEW)"),
        ({}, ""),
    ],
)
def test_a_blocked_asset_says_why_and_records_nothing(extra: dict[str, str], reason: str) -> None:
    live = live_asset(asset_state="BLOCK", **extra)
    row = plan({"asset_name": "x", "review_config": {"no_need_review": True}}, live)
    assert row.action is Action.BLOCKED
    assert row.errors == [f"asset is BLOCK, a state that does not allow updates{reason}"]
    assert row.write_only_fingerprint is None


# --- ordered lists of objects beside other fields (items with distinct identities) ------------


def test_an_ordered_list_after_other_declared_fields_is_still_matched_by_identity() -> None:
    live_block = {
        "support_live": False,
        "action_tag_map": [{"action_name_en": "wave", "action_name_zh": "挥手", "tag": "t1"}],
    }
    declared = {
        "support_live": True,
        "action_tag_map": [{"action_name_en": "wave", "action_name_zh": "招手"}],
    }
    row = plan({"asset_extra_meta": {HM: declared}}, live_asset(asset_extra_meta={HM: live_block}))
    sent = row.body["asset_extra_meta"][HM] if row.body else {}
    assert sent == {
        "support_live": True,
        "action_tag_map": [{"action_name_en": "wave", "action_name_zh": "招手", "tag": "t1"}],
    }


def test_an_empty_ordered_list_matching_an_absent_one_is_sent_empty_not_null() -> None:
    live = live_asset(asset_extra_meta={HM: {"support_live": False}})
    row = plan({"asset_extra_meta": {HM: {"support_live": True, "action_tag_map": []}}}, live)
    assert row.body == {"asset_extra_meta": {HM: {"support_live": True, "action_tag_map": []}}}


def test_an_ordered_list_declared_where_live_has_none_is_sent_as_declared() -> None:
    items = [{"action_name_en": "wave", "action_name_zh": "招手"}]
    for live in (
        live_asset(),
        live_asset(asset_extra_meta={HM: {"support_live": True}}),
    ):
        row = plan({"asset_extra_meta": {HM: {"action_tag_map": items}}}, live)
        assert row.body is not None
        assert row.body["asset_extra_meta"][HM]["action_tag_map"] == items


def test_a_set_like_list_beside_a_change_is_sent_as_the_manifest_writes_it() -> None:
    live = live_asset(asset_extra_meta={HM: {"support_live": False, "device_names": ["d1", "d2"]}})
    for names in (["d2", "d1"], ["d3", "d1"]):
        row = plan({"asset_extra_meta": {HM: {"support_live": True, "device_names": names}}}, live)
        assert row.body == {"asset_extra_meta": {HM: {"support_live": True, "device_names": names}}}


def test_objects_where_a_set_like_list_holds_strings_are_planned_not_a_crash() -> None:
    """A service that puts objects into ``tags`` (unhashable) still gets a plan: the
    objects are removed, the declared tags added, each shown once."""
    from reconciler.engine.diff import Desired, diff_asset
    from reconciler.engine.plan import Action

    live = {
        "asset_id": "a1",
        "asset_type": "IMAGE",
        "asset_state": "ACTIVED",
        "tags": [{"a": 1}, {"a": 1}, "NEWS"],
    }
    row = diff_asset(Desired("a1", {"tags": ["NEWS", "SPORTS"]}), live)
    assert row.action is Action.UPDATE
    assert row.body == {"tags": ["NEWS", "SPORTS"]}
    (change,) = row.changes
    assert change.added == ("SPORTS",) and change.removed == ({"a": 1},)
