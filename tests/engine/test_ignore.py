"""Ignore rules in the diff: what a rule names is not diffed, not sent and not drift, and a
set-like list with ignored entries is sent merged, exactly as the plan shows it."""

from __future__ import annotations

from typing import Any

from reconciler.api.rules import IgnoreRule, manifest_rule, parse_ignore
from reconciler.engine import policy
from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.drift import DriftStatus, project_drift
from reconciler.engine.guardrails import Rules
from reconciler.engine.ignore import merged_entries
from reconciler.engine.plan import Action, AssetPlan, Ignored

ID = "a-1"


def live(**fields: Any) -> dict[str, Any]:
    return {
        "asset_id": ID,
        "asset_name": "Voice",
        "asset_type": "VOICE_MODEL",
        "asset_state": "ACTIVED",
        "asset_order": 3,
        "tags": ["NEWS", "campaign-spring"],
        "asset_extra_meta": {
            "voice_model_meta": {"speed_ratio": 1.2, "volume_ratio": 1.0, "sex": "FEMALE"}
        },
        **fields,
    }


def rules(*raw: dict[str, Any]) -> Rules:
    return Rules(parse_ignore(list(raw)))


ORDER = {"name": "console-owns-order", "paths": ["spec.asset_order"]}
CAMPAIGN = {"name": "campaign-tags", "paths": ["spec.tags[campaign-*]"]}
SPEED = {"name": "pm-speed", "paths": ["spec.asset_extra_meta.voice_model_meta.speed_ratio"]}


def plan_of(
    spec: dict[str, Any], given: Rules | None, row: dict[str, Any] | None = None
) -> AssetPlan:
    return diff_asset(Desired(ID, spec, rules=given), row or live())


def test_an_ignored_field_is_neither_diffed_nor_sent_and_is_shown_with_its_rule() -> None:
    plan = plan_of({"asset_order": 9, "asset_name": "New"}, rules(ORDER))
    assert plan.body == {"asset_name": "New"}
    assert [c.dotted for c in plan.changes] == ["asset_name"]
    assert plan.ignored == [Ignored("asset_order", "console-owns-order")]
    alone = plan_of({"asset_order": 9}, rules(ORDER))
    assert alone.action is Action.NOOP and alone.body is None


def test_without_the_rule_the_same_field_is_sent() -> None:
    assert plan_of({"asset_order": 9}, None).body == {"asset_order": 9}


def test_matching_live_entries_are_kept_and_matching_manifest_entries_not_added() -> None:
    plan = plan_of({"tags": ["NEWS", "FEMALE", "campaign-x"]}, rules(CAMPAIGN))
    assert plan.body == {"tags": ["NEWS", "FEMALE", "campaign-spring"]}
    (change,) = plan.changes
    assert change.after == plan.body["tags"]  # the plan shows exactly the list sent
    assert (change.added, change.removed) == (("FEMALE",), ())
    assert plan.ignored == [
        Ignored("tags", "campaign-tags", pattern="campaign-*", kept=("campaign-spring",))
    ]


def test_a_list_that_differs_only_in_ignored_entries_is_in_sync() -> None:
    row = live(tags=["NEWS", "campaign-a", "campaign-b"])
    assert plan_of({"tags": ["NEWS"]}, rules(CAMPAIGN), row).action is Action.NOOP
    assert plan_of({"tags": ["NEWS"]}, None, row).action is Action.UPDATE


def test_an_ignored_field_inside_a_block_is_sent_as_live_holds_it() -> None:
    spec = {"asset_extra_meta": {"voice_model_meta": {"speed_ratio": 2.0, "volume_ratio": 1.5}}}
    plan = plan_of(spec, rules(SPEED))
    assert plan.body == {
        "asset_extra_meta": {
            "voice_model_meta": {"speed_ratio": 1.2, "volume_ratio": 1.5, "sex": "FEMALE"}
        }
    }
    only = plan_of({"asset_extra_meta": {"voice_model_meta": {"speed_ratio": 2.0}}}, rules(SPEED))
    assert only.action is Action.NOOP  # the emptied block is not managed as {}


def test_a_rules_match_selects_assets_by_type_labels_and_ids() -> None:
    typed = {**ORDER, "match": {"asset_type": ["HUMAN_MODEL_2D"]}}
    assert plan_of({"asset_order": 9}, rules(typed)).body == {"asset_order": 9}
    labelled = {**ORDER, "match": {"labels": {"team": "console"}}}
    desired = Desired(ID, {"asset_order": 9}, labels={"team": "console"}, rules=rules(labelled))
    assert diff_asset(desired, live()).body is None
    by_id = {**ORDER, "match": {"asset_ids": ["other"]}}
    assert plan_of({"asset_order": 9}, rules(by_id)).body == {"asset_order": 9}


def test_a_manifests_own_ignore_works_without_configuration() -> None:
    desired = Desired(ID, {"asset_order": 9}, own_ignore=(manifest_rule(["spec.asset_order"]),))
    plan = diff_asset(desired, live())
    assert plan.body is None
    assert plan.ignored == [Ignored("asset_order", "metadata.ignore")]


def test_system_property_keys_can_be_ignored_one_by_one() -> None:
    row = live(system_properties=[{"key": "A", "value": "1"}, {"key": "B", "value": "1"}])
    spec = {"system_properties": {"A": "2", "B": "2"}}
    plan = plan_of(spec, rules({"name": "b", "paths": ["spec.system_properties.B"]}), row)
    assert plan.body == {"system_properties": [{"action": "ADD", "key": "A", "value": "2"}]}


def test_drift_does_not_count_ignored_fields() -> None:
    row = live(asset_order=7, tags=["NEWS", "campaign-fall"])
    desired = Desired(ID, {"asset_order": 9, "tags": ["NEWS"]}, rules=rules(ORDER, CAMPAIGN))
    (asset,) = project_drift([desired], [row]).assets
    assert asset.status is DriftStatus.IN_SYNC
    (plain,) = project_drift([Desired(ID, {"asset_order": 9, "tags": ["NEWS"]})], [row]).assets
    assert plain.status is DriftStatus.DRIFTED


def test_merged_entries_keep_live_order_and_never_duplicate() -> None:
    merged, kept = merged_entries(["a", "c-1", "b"], ["c-2", "x", "c-2", "c-3"], "c-*")
    assert merged == ["a", "b", "c-2", "c-3"]
    assert kept == ["c-2", "c-2", "c-3"]
    assert merged_entries(["a"], None, "c-*") == (["a"], [])


def test_the_entry_lists_are_the_readable_set_like_lists() -> None:
    from reconciler.api.rules import ENTRY_LISTS

    readable = {p for p in policy.SET_LIKE if p[0] not in policy.WRITE_ONLY}
    assert readable == ENTRY_LISTS


def test_rules_are_plain_data_shared_by_every_asset() -> None:
    shared = rules(ORDER)
    assert isinstance(shared.ignore[0], IgnoreRule)
    first = plan_of({"asset_order": 9}, shared)
    second = plan_of({"asset_order": 9}, shared)
    assert first.ignored == second.ignored


def test_a_rule_matched_by_this_assets_id_and_type_applies() -> None:
    by_id = {**ORDER, "match": {"asset_ids": ["other", ID]}}
    assert plan_of({"asset_order": 9}, rules(by_id)).body is None
    # asset_type is not declared: the rule is matched against the type live holds
    typed = {**ORDER, "match": {"asset_type": ["VOICE_MODEL"]}}
    plan = plan_of({"asset_order": 9}, rules(typed))
    assert plan.body is None
    assert plan.ignored == [Ignored("asset_order", "console-owns-order")]


def test_every_path_of_a_rule_is_applied_even_after_one_the_manifest_leaves_out() -> None:
    both = {"name": "console", "paths": ["spec.asset_order", "spec.asset_name"]}
    plan = plan_of({"asset_name": "New"}, rules(both))
    assert plan.action is Action.NOOP and plan.body is None
    assert plan.ignored == [Ignored("asset_name", "console")]


def test_an_ignored_field_inside_a_block_is_reported_by_its_full_path() -> None:
    plan = plan_of({"asset_extra_meta": {"voice_model_meta": {"speed_ratio": 2.0}}}, rules(SPEED))
    assert plan.ignored == [Ignored("asset_extra_meta.voice_model_meta.speed_ratio", "pm-speed")]


def test_ignored_entries_of_a_list_inside_a_block_are_merged_there() -> None:
    row = live(
        asset_extra_meta={
            "voice_model_meta": {
                "speed_ratio": 1.2,
                "volume_ratio": 1.0,
                "languages": ["CN", "Thai"],
            }
        }
    )
    thai = {"name": "langs", "paths": ["spec.asset_extra_meta.voice_model_meta.languages[Th*]"]}
    spec = {
        "asset_extra_meta": {"voice_model_meta": {"speed_ratio": 2.0, "languages": ["EN", "Tha"]}}
    }
    plan = plan_of(spec, rules(thai), row)
    sent = {"speed_ratio": 2.0, "volume_ratio": 1.0, "languages": ["EN", "Thai"]}
    assert plan.body == {"asset_extra_meta": {"voice_model_meta": sent}}
    (change,) = plan.changes
    assert change.after == sent  # the plan shows the merged list that is sent
    assert plan.ignored == [
        Ignored(
            "asset_extra_meta.voice_model_meta.languages", "langs", pattern="Th*", kept=("Thai",)
        )
    ]
