"""Outcomes, verification and staleness of apply, as a user sees them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.engine.apply import (
    ApplyResult,
    Mismatch,
    ReadCounts,
    changed_since_plan,
    in_plan_order,
    needs_whole_read,
    not_applied,
    stale_records,
    to_send,
    verify,
)
from reconciler.engine.fingerprint import live_fingerprint
from reconciler.engine.plan import Action, AssetPlan, ChangeKind, FieldChange, Plan
from reconciler.render.apply_json import document
from reconciler.render.apply_text import mismatch_line, result_line, stale_message, summary


def _asset_json(result: ApplyResult) -> list[dict[str, Any]]:
    assets: list[dict[str, Any]] = document(result)["assets"]
    return assets


# --- the reads apply reports besides its writes ------------------------------------------------


def test_read_counts_of_several_targets_add_up_field_by_field() -> None:
    first = ReadCounts(fresh_lists=1, fresh_assets=2, fresh_shows=3, read_backs=4, retry_reads=5)
    second = ReadCounts(
        fresh_lists=10, fresh_assets=20, fresh_shows=30, read_backs=40, retry_reads=50
    )
    total = ReadCounts.total([first, second])
    assert total == ReadCounts(
        fresh_lists=11, fresh_assets=22, fresh_shows=33, read_backs=44, retry_reads=55
    )
    assert total.requests == 11 + 33 + 44 + 55
    assert ReadCounts.total([]) == ReadCounts()


# --- rows that are sent, not applied, not started --------------------------------------------


def test_only_update_rows_with_a_body_are_sent() -> None:
    plan = Plan(
        [
            AssetPlan("send", Action.UPDATE, body={"asset_order": 2}),
            AssetPlan("noop-with-body", Action.NOOP, body={"asset_order": 2}),
            AssetPlan("error-with-body", Action.ERROR, body={"asset_order": 2}),
            AssetPlan("update-without-body", Action.UPDATE),
        ]
    )
    assert [row.asset_id for row in to_send(plan)] == ["send"]


def test_an_error_row_says_why_and_keeps_its_error_code() -> None:
    row = AssetPlan(
        "a1",
        Action.ERROR,
        name="Sara",
        errors=["asset not found", "tags: not a list"],
        error_code="MSS.10001001",
    )
    result = ApplyResult([not_applied(row)])
    assert result_line(result.results[0]) == (
        "a1: not applied (Sara): asset not found; tags: not a list"
    )
    assert _asset_json(result) == [
        {
            "asset_id": "a1",
            "name": "Sara",
            "outcome": "not applied",
            "attempts": 0,
            "error_code": "MSS.10001001",
            "reason": "asset not found; tags: not a list",
        }
    ]
    assert result.exit_code == 1
    assert summary(result) == "Apply failed: 0 changed, 0 failed, 1 not applied (see the plan)."


def test_a_blocked_row_without_errors_names_the_state() -> None:
    row = AssetPlan("b1", Action.BLOCKED, name="Bo", live_state="BLOCKED")
    result = not_applied(row)
    assert result.reason is None
    assert (
        result_line(result)
        == "b1: not applied (Bo): blocked: asset state BLOCKED cannot be updated"
    )


def test_update_rows_that_never_ran_are_not_started_in_plan_order() -> None:
    plan = Plan(
        [
            AssetPlan("a", Action.UPDATE, name="Ann", body={"asset_order": 1}),
            AssetPlan("n", Action.NOOP, name="Nil"),
            AssetPlan("b", Action.UPDATE, name="Bee", body={"asset_order": 2}),
        ]
    )
    done = changed_since_plan(plan.assets[2], None)
    assert done is not None
    result = in_plan_order(plan, {"b": done}, interrupted=True)
    assert [result_line(r) for r in result.results] == [
        "a: not started (Ann)",
        "b: CHANGED SINCE PLAN (Bee): the asset no longer exists after the plan was made; "
        "nothing was sent (run `reconciler plan` to see the new state)",
    ]
    assert result.exit_code == 130
    assert summary(result) == (
        "Apply interrupted: 0 changed, 0 failed, 1 changed since plan (not sent), 1 not started."
    )


# --- the fresh read right before a write -----------------------------------------------------


def test_a_fresh_summary_row_lacking_a_planned_field_is_read_whole() -> None:
    planned = {"asset_id": "a", "asset_name": "A", "tags": ["x"]}
    row = AssetPlan("a", Action.UPDATE, body={"tags": ["y"]}, live=planned)
    assert needs_whole_read(row, {"asset_id": "a", "asset_name": "A"}) is True
    assert needs_whole_read(row, dict(planned)) is False
    saved = AssetPlan("a", Action.UPDATE, body={"tags": ["y"]}, live_fingerprint="fp")
    assert needs_whole_read(saved, {"asset_id": "a"}) is False


def test_a_vanished_asset_is_changed_since_plan_and_fails_the_run() -> None:
    row = AssetPlan("a1", Action.UPDATE, name="Sara", body={"asset_order": 2})
    result = changed_since_plan(row, None)
    assert result is not None
    assert result_line(result) == (
        "a1: CHANGED SINCE PLAN (Sara): the asset no longer exists after the plan was made; "
        "nothing was sent (run `reconciler plan` to see the new state)"
    )
    assert _asset_json(ApplyResult([result])) == [
        {
            "asset_id": "a1",
            "name": "Sara",
            "outcome": "changed since plan",
            "attempts": 0,
            "gone": True,
        }
    ]
    assert ApplyResult([result]).exit_code == 1


def test_a_planned_asset_in_memory_names_the_fields_that_moved() -> None:
    planned = {"asset_id": "a1", "asset_name": "Sara", "asset_order": 1}
    row = AssetPlan("a1", Action.UPDATE, name="Sara", body={"asset_order": 2}, live=planned)
    assert changed_since_plan(row, dict(planned)) is None
    result = changed_since_plan(row, {**planned, "asset_order": 5})
    assert result is not None
    assert result_line(result) == (
        "a1: CHANGED SINCE PLAN (Sara): asset_order changed after the plan was made; "
        "nothing was sent (run `reconciler plan` to see the new state)"
    )


def test_a_saved_plan_row_is_checked_by_its_fingerprint() -> None:
    fresh = {"asset_id": "a1", "asset_name": "Sara", "asset_order": 1}
    row = AssetPlan(
        "a1",
        Action.UPDATE,
        name="Sara",
        body={"asset_order": 2},
        live_fingerprint=live_fingerprint(fresh),
    )
    assert changed_since_plan(row, fresh) is None
    moved = changed_since_plan(row, {**fresh, "asset_order": 3})
    assert moved is not None
    assert result_line(moved) == (
        "a1: CHANGED SINCE PLAN (Sara): the live asset changed after the plan was made; "
        "nothing was sent (run `reconciler plan` to see the new state)"
    )
    assert _asset_json(ApplyResult([moved])) == [
        {"asset_id": "a1", "name": "Sara", "outcome": "changed since plan", "attempts": 0}
    ]


def test_a_row_with_neither_live_nor_fingerprint_is_not_sent() -> None:
    row = AssetPlan("a1", Action.UPDATE, name="Sara", body={"asset_order": 2})
    result = changed_since_plan(row, {"asset_id": "a1", "asset_order": 1})
    assert result is not None
    assert result_line(result).startswith("a1: CHANGED SINCE PLAN (Sara): the live asset changed")


# --- verify: every field sent must show in the answer ----------------------------------------


def _not_taken(body: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    return [mismatch_line(m) for m in verify(body, live)]


def test_fields_after_a_write_only_field_are_still_verified() -> None:
    body = {"review_config": {"no_need_review": True}, "asset_order": 7}
    assert _not_taken(body, {"asset_order": 1}) == ["asset_order = 7 (service has 1)"]


def test_fields_after_system_properties_are_still_verified() -> None:
    body = {
        "system_properties": [{"action": "ADD", "key": "BACKGROUND_IMG", "value": "Yes"}],
        "asset_order": 7,
    }
    live = {"system_properties": [{"key": "BACKGROUND_IMG", "value": "Yes"}], "asset_order": 1}
    assert _not_taken(body, live) == ["asset_order = 7 (service has 1)"]


def test_a_live_property_marked_deleted_does_not_count_as_present() -> None:
    body = {"system_properties": [{"action": "ADD", "key": "BACKGROUND_IMG", "value": "Yes"}]}
    live = {
        "system_properties": [
            "not an object",
            {"action": "DELETE", "key": "BACKGROUND_IMG", "value": "Yes"},
        ]
    }
    assert _not_taken(body, live) == ['system_properties.BACKGROUND_IMG = "Yes" (service has null)']
    kept = {"system_properties": ["not an object", {"key": "BACKGROUND_IMG", "value": "Yes"}]}
    assert _not_taken(body, kept) == []


def test_a_property_deleted_and_added_again_is_not_a_removal_left_behind() -> None:
    ops = [
        {"action": "DELETE", "key": "MATERIAL_IMG", "value": "Old"},
        {"action": "ADD", "key": "MATERIAL_IMG", "value": "New"},
    ]
    live = {"system_properties": [{"key": "MATERIAL_IMG", "value": "New"}]}
    assert _not_taken({"system_properties": ops}, live) == []


def test_a_cleared_value_the_service_kept_is_not_converged() -> None:
    body = {"asset_description": ""}
    assert verify(body, {"asset_description": "old text"}) == [
        Mismatch("asset_description", "", "old text")
    ]
    assert _not_taken(body, {"asset_description": "old text"}) == [
        'asset_description = "" (service has "old text")'
    ]
    assert verify(body, {}) == []


def test_an_object_answered_with_something_else_is_reported_whole() -> None:
    sent = {"human_model_2d_meta": {"support_live": True}}
    body = {"asset_extra_meta": sent}
    live = {"asset_extra_meta": "unexpected"}
    assert verify(body, live) == [Mismatch("asset_extra_meta", sent, "unexpected", whole=True)]
    assert _not_taken(body, live) == ['asset_extra_meta (service has "unexpected")']


def test_a_list_answered_with_a_non_list_is_not_converged() -> None:
    body = {"tags": ["A"]}
    assert verify(body, {"tags": "A"}) == [Mismatch("tags", ["A"], "A")]
    assert _not_taken(body, {"tags": "A"}) == ['tags = ["A"] (service has "A")']


def test_a_set_like_list_missing_an_item_is_not_converged() -> None:
    body = {"tags": ["A", "B"]}
    assert verify(body, {"tags": ["A"]}) == [Mismatch("tags", ["A", "B"], ["A"])]
    assert _not_taken(body, {"tags": ["B", "A"]}) == []


def test_true_and_one_do_not_meet_in_a_set_like_list() -> None:
    assert verify({"flags": [True]}, {"flags": [1]}) == [Mismatch("flags", [True], [1])]
    assert verify({"flags": [1]}, {"flags": [1.0]}) == []


def test_a_list_of_objects_of_another_length_is_not_converged() -> None:
    sent = [{"operation": "BLOCK"}, {"operation": "UNBLOCK"}]
    live = [{"operation": "BLOCK"}]
    assert verify({"auto_operation_config": sent}, {"auto_operation_config": live}) == [
        Mismatch("auto_operation_config", sent, live)
    ]


def test_an_item_of_a_list_of_objects_names_its_position() -> None:
    sent = [{"operation": "BLOCK"}, {"operation": "UNBLOCK"}]
    live = [{"operation": "BLOCK"}, {"operation": "BLOCK", "id": 9}]
    body = {"auto_operation_config": sent}
    assert _not_taken(body, {"auto_operation_config": live}) == [
        'auto_operation_config[1].operation = "UNBLOCK" (service has "BLOCK")'
    ]


def test_a_scalar_sent_where_the_service_holds_objects_is_compared_item_by_item() -> None:
    assert verify({"tags": ["A"]}, {"tags": [{"name": "A"}]}) == [
        Mismatch("tags[0]", "A", {"name": "A"})
    ]


def test_text_and_a_number_are_never_the_same_value() -> None:
    assert verify({"asset_order": "7"}, {"asset_order": 7}) == [Mismatch("asset_order", "7", 7)]
    assert verify({"asset_order": 7}, {"asset_order": "7"}) == [Mismatch("asset_order", 7, "7")]


# --- a saved plan whose write-only values were applied again since -----------------------------


def _write_only_change() -> FieldChange:
    return FieldChange(("review_config",), ChangeKind.WRITE_ONLY, after={"no_need_review": True})


def test_rows_whose_write_only_record_moved_make_the_plan_stale() -> None:
    plan = Plan(
        [
            # sends write-only values; its record moved since the plan
            AssetPlan(
                "sends",
                Action.UPDATE,
                name="Ann",
                changes=[_write_only_change()],
                body={"review_config": {"no_need_review": True}},
                write_only_record=None,
            ),
            # manages write-only values that match its record; the record moved
            AssetPlan("keeps", Action.NOOP, write_only=["shared_config"], write_only_record="r1"),
            # manages write-only values; its record is the one the plan was made with
            AssetPlan("same", Action.NOOP, write_only=["shared_config"], write_only_record="r1"),
            # manages none: a record of its own does not matter
            AssetPlan(
                "plain",
                Action.UPDATE,
                changes=[FieldChange(("asset_order",), ChangeKind.UPDATE, 1, 2)],
                body={"asset_order": 2},
            ),
            # an error row is not applied, so its record does not matter
            AssetPlan("broken", Action.ERROR, write_only=["shared_config"], errors=["bad"]),
        ]
    )
    records = {"sends": "fp@t2", "keeps": "r2", "same": "r1", "plain": "fp@t1", "broken": "x"}
    stale = stale_records(plan, records)
    assert [(item.asset_id, item.name, item.write_only, item.gone) for item in stale] == [
        ("sends", "Ann", True, False),
        ("keeps", None, True, False),
    ]
    assert stale_message(stale).splitlines() == [
        "the saved plan is stale: 2 assets changed since it was made; nothing was sent.",
        "  sends (Ann): its write-only values (review_config, shared_config) were applied again "
        "since the plan was made; this plan would send older ones back",
        "  keeps: its write-only values (review_config, shared_config) were applied again since "
        "the plan was made; this plan would send older ones back",
        "Run `reconciler plan --out PLANFILE` again and apply the new plan.",
    ]


def test_no_write_only_records_moved_means_nothing_stale() -> None:
    plan = Plan(
        [AssetPlan("same", Action.NOOP, write_only=["shared_config"], write_only_record="r1")]
    )
    assert stale_records(plan, {"same": "r1"}) == []
    assert stale_records(Plan([]), {}) == []
