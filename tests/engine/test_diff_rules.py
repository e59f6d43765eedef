"""How the diff applies a target's rules to one asset: the ignore rules of the configuration
and of the manifest, chosen by the asset's id, type and labels and kept as live holds them,
and the policy rules, judged on the change with the asset's labels and the target's name."""

from __future__ import annotations

from typing import Any

from reconciler.api.rules import manifest_rule, parse_ignore, parse_policies
from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.guardrails import Rules
from reconciler.engine.plan import Action, Ignored, Violation

ID = "a-1"


def live(**fields: Any) -> dict[str, Any]:
    return {
        "asset_id": ID,
        "asset_name": "Voice",
        "asset_type": "VOICE_MODEL",
        "asset_state": "ACTIVED",
        "asset_order": 3,
        "tags": ["NEWS", "campaign-spring"],
        **fields,
    }


ORDER = {"name": "console-owns-order", "paths": ["spec.asset_order"]}


def test_the_targets_rules_and_the_manifests_own_ignore_both_apply() -> None:
    desired = Desired(
        ID,
        {"asset_order": 9, "asset_name": "New", "tags": ["NEWS"]},
        own_ignore=(manifest_rule(["spec.asset_name"]),),
        rules=Rules(parse_ignore([ORDER])),
    )
    plan = diff_asset(desired, live())
    assert plan.body == {"tags": ["NEWS"]}
    assert plan.ignored == [
        Ignored("asset_order", "console-owns-order"),
        Ignored("asset_name", "metadata.ignore"),
    ]


def test_an_ignore_rule_is_chosen_by_the_assets_id_its_live_type_and_its_labels() -> None:
    matched = {
        **ORDER,
        "match": {"asset_ids": [ID], "asset_type": ["VOICE_MODEL"], "labels": {"team": "a"}},
    }
    given = Rules(parse_ignore([matched]))
    chosen = diff_asset(Desired(ID, {"asset_order": 9}, labels={"team": "a"}, rules=given), live())
    assert chosen.action is Action.NOOP and chosen.body is None
    assert chosen.ignored == [Ignored("asset_order", "console-owns-order")]
    other = diff_asset(Desired(ID, {"asset_order": 9}, labels={"team": "b"}, rules=given), live())
    assert other.body == {"asset_order": 9} and other.ignored == []


def test_ignored_entries_of_a_list_are_taken_from_live() -> None:
    campaign = {"name": "campaign-tags", "paths": ["spec.tags[campaign-*]"]}
    desired = Desired(ID, {"tags": ["NEWS", "FEMALE"]}, rules=Rules(parse_ignore([campaign])))
    plan = diff_asset(desired, live())
    assert plan.body == {"tags": ["NEWS", "FEMALE", "campaign-spring"]}
    assert plan.ignored == [
        Ignored("tags", "campaign-tags", pattern="campaign-*", kept=("campaign-spring",))
    ]


def test_a_policy_judges_the_change_with_the_assets_labels_and_the_targets_name() -> None:
    deny = (
        "target == 'prod' && labels.team == 'red' && asset.id == 'a-1'"
        " && before.asset_name == 'Voice' && after.asset_name == 'New'"
    )
    rule = {"name": "rename", "deny": deny, "message": "no renames in prod"}
    given = Rules(policies=parse_policies([rule]), target="prod")
    desired = Desired(ID, {"asset_name": "New"}, labels={"team": "red"}, rules=given)
    plan = diff_asset(desired, live())
    assert plan.body == {"asset_name": "New"}
    assert plan.violations == [Violation("rename", "no renames in prod")]
    elsewhere = Rules(policies=given.policies, target="staging")
    let_through = diff_asset(
        Desired(ID, {"asset_name": "New"}, labels={"team": "red"}, rules=elsewhere), live()
    )
    assert let_through.violations == []
