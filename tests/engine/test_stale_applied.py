"""A saved plan applied again: "already applied" when the live state and the write-only record
are exactly what the plan leaves, "stale" as soon as anything else moved."""

from __future__ import annotations

from typing import Any

from reconciler.engine.apply import PlanStale, StaleAsset, stale_assets, stale_records
from reconciler.engine.plan import Action, AssetPlan, Plan

ID = "a-1"


def row(body: dict[str, Any], **more: Any) -> AssetPlan:
    return AssetPlan(
        asset_id=ID, action=Action.UPDATE, name="Sara", body=body, live_fingerprint="old", **more
    )


def moved(_live: Any) -> str:
    return "new"  # every asset read now differs from the plan's fingerprint


def test_an_asset_showing_every_value_the_plan_sends_was_applied() -> None:
    [item] = stale_assets(
        [row({"asset_name": "Sara", "tags": ["A", "B"]})],
        {ID: {"asset_name": "Sara", "tags": ["B", "A"], "update_time": "later"}},
        moved,
    )
    assert item == StaleAsset(ID, "Sara", applied=True)


def test_an_asset_changed_otherwise_is_stale() -> None:
    [item] = stale_assets([row({"asset_name": "Sara"})], {ID: {"asset_name": "Console"}}, moved)
    assert item == StaleAsset(ID, "Sara", applied=False)
    [gone] = stale_assets([row({"asset_name": "Sara"})], {}, moved)
    assert gone == StaleAsset(ID, "Sara", gone=True)


def test_a_row_the_plan_did_not_change_is_never_taken_as_applied() -> None:
    unchanged = AssetPlan(asset_id=ID, action=Action.NOOP, name="Sara", live_fingerprint="old")
    [item] = stale_assets([unchanged], {ID: {"asset_name": "Sara"}}, moved)
    assert not item.applied


def test_a_write_only_record_left_by_this_plan_means_applied() -> None:
    planned = row(
        {"review_config": {"enable": True}},
        write_only=["review_config"],
        write_only_record="fp-old@2026-01-01T00:00:00Z",
        write_only_fingerprint="fp-new",
    )
    plan = Plan([planned])
    [ours] = stale_records(plan, {ID: "fp-new@2026-01-02T00:00:00Z"})
    assert ours.write_only and ours.applied
    [theirs] = stale_records(plan, {ID: "fp-other@2026-01-02T00:00:00Z"})
    assert theirs.write_only and not theirs.applied


def test_the_plan_is_already_applied_only_when_every_stale_asset_was() -> None:
    applied = StaleAsset(ID, "Sara", applied=True)
    other = StaleAsset("a-2", "Other")
    assert PlanStale([("prod", [applied])], several=False).already_applied
    assert not PlanStale([("prod", [applied, other])], several=False).already_applied
    assert not PlanStale([("prod", [applied]), ("sg", [other])], several=True).already_applied
    assert not PlanStale([], several=False).already_applied
