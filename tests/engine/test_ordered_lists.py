"""Ordered lists of objects: items are matched with live by identity, never by position.

docs/field-semantics.md, "Ordered lists of objects": an item's unwritten keys are filled only
from the live item with the same identity (``file_id``, ``action_name_en``, ``component_name``);
the plan's items show every value the body sends; ambiguous lists are refused per asset.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.plan import Action, AssetPlan, FieldChange, ItemChange

AID = "a-1"
PAGES = [
    {"page_no": 1, "file_id": "pg1", "page_content": "text 1"},
    {"page_no": 2, "file_id": "pg2", "page_content": "text 2"},
]


def deck(pages: list[dict[str, Any]], **block: Any) -> dict[str, Any]:
    return {
        "asset_id": AID,
        "asset_name": "Deck",
        "asset_type": "PPT",
        "asset_state": "ACTIVED",
        "asset_extra_meta": {
            "ppt_meta": {
                "auto_analysis": False,
                "ppt_analysis_status": "SUCCEEDED",
                "pages": copy.deepcopy(pages),
                **block,
            }
        },
    }


def plan_pages(pages: list[dict[str, Any]], live: dict[str, Any], **block: Any) -> AssetPlan:
    spec = {"asset_extra_meta": {"ppt_meta": {"pages": pages, **block}}}
    return diff_asset(Desired(AID, spec), live)


def sent_pages(plan: AssetPlan) -> Any:
    assert plan.body is not None, plan.errors
    return plan.body["asset_extra_meta"]["ppt_meta"]["pages"]


def pages_change(plan: AssetPlan) -> FieldChange:
    [block] = plan.changes
    [change] = [c for c in block.children if c.dotted == "asset_extra_meta.ppt_meta.pages"]
    return change


def test_swapped_file_ids_keep_each_file_its_own_page_content() -> None:
    plan = plan_pages(
        [{"page_no": 1, "file_id": "pg2"}, {"page_no": 2, "file_id": "pg1"}], deck(PAGES)
    )
    assert sent_pages(plan) == [
        {"page_no": 1, "file_id": "pg2", "page_content": "text 2"},
        {"page_no": 2, "file_id": "pg1", "page_content": "text 1"},
    ]
    assert pages_change(plan).items == (
        ItemChange(PAGES[1], sent_pages(plan)[0], 1, ("page_no",), ("page_content",)),
        ItemChange(PAGES[0], sent_pages(plan)[1], 0, ("page_no",), ("page_content",)),
    )


def test_a_new_item_is_sent_as_written_and_dropped_live_items_are_listed_last() -> None:
    plan = plan_pages([{"page_no": 1, "file_id": "pg3"}, {"file_id": "pg2"}], deck(PAGES))
    assert sent_pages(plan) == [
        {"page_no": 1, "file_id": "pg3"},
        {"page_no": 2, "file_id": "pg2", "page_content": "text 2"},
    ]
    items = pages_change(plan).items
    assert items[0] == ItemChange(
        None, {"page_no": 1, "file_id": "pg3"}, None, ("page_no", "file_id")
    )
    assert items[1].live_index == 1 and items[1].changed == ()
    assert items[1].kept == ("page_no", "page_content")
    assert items[2] == ItemChange(PAGES[0], None, 0)


def test_an_unchanged_list_in_a_changed_block_is_sent_back_as_live_holds_it() -> None:
    live_pages = [{**PAGES[0], "thumb": "t1"}, {**PAGES[1], "thumb": "t2"}]
    plan = plan_pages(
        [{"file_id": "pg1"}, {"file_id": "pg2"}], deck(live_pages), auto_analysis=True
    )
    assert sent_pages(plan) == live_pages
    assert [c.dotted for c in plan.changes[0].children] == [
        "asset_extra_meta.ppt_meta.auto_analysis"
    ]


def test_values_are_kept_from_the_item_with_the_same_identity_in_every_list() -> None:
    live = {
        "asset_id": AID,
        "asset_type": "MATERIAL",
        "asset_state": "ACTIVED",
        "asset_extra_meta": {
            "material_meta": {
                "components": [
                    {"component_name": "coat", "component_type": "CLOTHES", "component_desc": "c"},
                    {"component_name": "boots", "component_type": "SHOES", "component_desc": "b"},
                ]
            }
        },
    }
    spec = {
        "asset_extra_meta": {
            "material_meta": {
                "components": [
                    {"component_name": "boots", "component_type": "SHOES"},
                    {"component_name": "coat", "component_type": "CLOTHES"},
                ]
            }
        }
    }
    plan = diff_asset(Desired(AID, spec), live)
    assert plan.body == {
        "asset_extra_meta": {
            "material_meta": {
                "components": [
                    {"component_name": "boots", "component_type": "SHOES", "component_desc": "b"},
                    {"component_name": "coat", "component_type": "CLOTHES", "component_desc": "c"},
                ]
            }
        }
    }


def test_an_item_without_identity_is_sent_as_written_when_no_live_item_is_left() -> None:
    assert sent_pages(plan_pages([{"page_content": "x"}], deck([]))) == [{"page_content": "x"}]
    plan = plan_pages([{"file_id": "pg2"}, {"file_id": "pg1"}, {"page_no": 3}], deck(PAGES))
    assert sent_pages(plan)[2] == {"page_no": 3}


def test_an_item_without_identity_while_live_has_unclaimed_items_is_refused() -> None:
    plan = plan_pages([{"page_no": 1, "page_content": "x"}, {"file_id": "pg1"}], deck(PAGES))
    assert plan.action is Action.ERROR
    assert plan.body is None
    assert plan.errors == [
        "asset_extra_meta.ppt_meta.pages[0] has no file_id, so it cannot be matched with a live "
        "item (live item [1], which no other item names, has file_id that it leaves out): "
        "write its file_id in the manifest"
    ]


def test_live_items_without_identity_ask_for_the_keys_the_item_leaves_out() -> None:
    live = deck([{"page_no": 1, "page_content": "old"}])
    plan = plan_pages([{"page_no": 2}], live)
    assert plan.errors == [
        "asset_extra_meta.ppt_meta.pages[0] has no file_id, so it cannot be matched with a live "
        "item (live item [0], which no other item names, has page_content that it leaves "
        "out): write its page_content in the manifest"
    ]
    written = plan_pages([{"page_no": 2, "page_content": "new"}], live)
    assert sent_pages(written) == [{"page_no": 2, "page_content": "new"}]


def test_live_items_sharing_an_identity_are_refused_only_when_they_differ() -> None:
    twins = [
        {"page_no": 1, "file_id": "pg1", "page_content": "same", "thumb": "t"},
        {"page_no": 2, "file_id": "pg1", "page_content": "same", "thumb": "t"},
    ]
    agreeing = plan_pages([{"page_no": 3, "file_id": "pg1"}], deck(twins))
    assert sent_pages(agreeing) == [
        {"page_no": 3, "file_id": "pg1", "page_content": "same", "thumb": "t"}
    ]
    assert pages_change(agreeing).items[1] == ItemChange(twins[1], None, 1)

    twins[1]["page_content"] = "other"
    plan = plan_pages([{"page_no": 3, "file_id": "pg1"}], deck(twins))
    assert plan.action is Action.ERROR
    assert plan.errors == [
        'live asset_extra_meta.ppt_meta.pages has 2 items with file_id "pg1" (items [0], [1]) '
        "that differ in page_content, so which values to keep is unknown: write page_content "
        "for asset_extra_meta.ppt_meta.pages[0] in the manifest"
    ]
    written = plan_pages([{"page_no": 3, "file_id": "pg1", "page_content": "x"}], deck(twins))
    assert sent_pages(written) == [
        {"page_no": 3, "file_id": "pg1", "page_content": "x", "thumb": "t"}
    ]


def test_two_declared_items_with_one_identity_are_refused() -> None:
    plan = plan_pages([{"file_id": "pg1"}, {"page_no": 5, "file_id": "pg1"}], deck(PAGES))
    assert plan.action is Action.ERROR
    assert plan.errors == [
        "asset_extra_meta.ppt_meta.pages[0] and asset_extra_meta.ppt_meta.pages[1] both have "
        'file_id "pg1": file_id tells the items apart, so give each item its own'
    ]


def test_auto_operation_config_items_are_sent_as_written_never_filled_by_position() -> None:
    live = deck(PAGES)
    live["auto_operation_config"] = [
        {"operation": "BLOCK", "operation_time": "2030-01-01T00:00:00Z", "job": "j1"}
    ]
    plan = diff_asset(Desired(AID, {"auto_operation_config": [{"operation": "DELETE"}]}), live)
    assert plan.body == {"auto_operation_config": [{"operation": "DELETE"}]}
    assert plan.changes[0].after == plan.body["auto_operation_config"]


def test_items_survive_the_saved_plan_round_trip() -> None:
    plan = plan_pages([{"page_no": 1, "file_id": "pg2"}], deck(PAGES))
    again = AssetPlan.from_json(plan.to_json())
    assert pages_change(again).items == pages_change(plan).items
    assert plan.to_json()["changes"][0]["children"][0]["items"][0]["kept_from_live"] == [
        "page_content"
    ]


# --- property: what is sent is what the items show ------------------------------------------

NAMES = ["wave", "nod", "bow", "clap"]
LIVE_ACTIONS = st.lists(st.sampled_from(NAMES), unique=True, max_size=4).flatmap(
    lambda names: st.tuples(
        *(
            st.fixed_dictionaries(
                {"action_name_zh": st.just("zh-" + name), "action_name_en": st.just(name)},
                optional={
                    "file_name": st.sampled_from(["a.mp4", "b.mp4"]),
                    "tag": st.sampled_from(["t1", "t2"]),
                    "future_key": st.integers(0, 3),
                },
            )
            for name in names
        )
    )
)
DECLARED_ACTIONS = st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=4).flatmap(
    lambda names: st.tuples(
        *(
            st.fixed_dictionaries(
                {"action_name_zh": st.just("zh-" + name), "action_name_en": st.just(name)},
                optional={"tag": st.sampled_from(["t1", "t3"])},
            )
            for name in names
        )
    )
)


@settings(max_examples=200, deadline=None)
@given(LIVE_ACTIONS, DECLARED_ACTIONS)
def test_every_sent_item_is_shown_and_keeps_only_its_own_live_values(
    live_items: tuple[dict[str, Any], ...], declared: tuple[dict[str, Any], ...]
) -> None:
    live = {
        "asset_id": AID,
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "asset_extra_meta": {"human_model_2d_meta": {"action_tag_map": list(live_items)}},
    }
    spec = {"asset_extra_meta": {"human_model_2d_meta": {"action_tag_map": list(declared)}}}
    plan = diff_asset(Desired(AID, spec), live)
    if plan.body is None:
        assert plan.action is Action.NOOP
        return
    sent = plan.body["asset_extra_meta"]["human_model_2d_meta"]["action_tag_map"]
    [change] = plan.changes[0].children
    shown = [item.after for item in change.items if item.after is not None]
    assert sent == shown
    by_name = {item["action_name_en"]: item for item in live_items}
    for want, item in zip(declared, sent, strict=True):
        own = by_name.get(want["action_name_en"], {})
        assert item == {**own, **want}
    for item in change.items:
        if item.after is not None:
            assert set(item.kept) == set(item.after) - set(declared[sent.index(item.after)])
