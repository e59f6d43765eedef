"""Policy rules over a planned change: which changes are refused, and why."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.api.rules import PolicyRule, parse_policies
from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.guardrails import Rules, after_put, evaluate, refused
from reconciler.engine.plan import Action, AssetPlan, Violation

ID = "a-1"


def live(**fields: Any) -> dict[str, Any]:
    return {
        "asset_id": ID,
        "asset_name": "Sara",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "tags": ["NEWS"],
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": True}},
        "system_properties": [{"key": "A", "value": "1"}],
        **fields,
    }


def policy(deny: str, **extra: Any) -> dict[str, Any]:
    return {"name": "rule", "deny": deny, "message": "refused", **extra}


def check(
    spec: dict[str, Any],
    *raw: dict[str, Any],
    labels: dict[str, str] | None = None,
    row: dict[str, Any] | None = None,
) -> AssetPlan:
    given = Rules(policies=parse_policies(list(raw)), target="prod")
    return diff_asset(Desired(ID, spec, labels=labels or {}, rules=given), row or live())


def test_a_true_condition_refuses_the_change_and_a_false_one_lets_it_through() -> None:
    deny = "after.asset_state == 'UNACTIVED'"
    assert check({"asset_state": "UNACTIVED"}, policy(deny)).violations == [
        Violation("rule", "refused")
    ]
    assert check({"asset_name": "Sara 2"}, policy(deny)).violations == []


@pytest.mark.parametrize(
    "deny",
    [
        "before.asset_name == 'Sara' && after.asset_name == 'Sara 2'",
        "'asset_name' in changes",
        "asset.id == 'a-1' && asset.type == 'HUMAN_MODEL_2D' && asset.state == 'ACTIVED'",
        "labels.team == 'red'",
        "target == 'prod'",
        "after.system_properties.A == '1' && after.tags == ['NEWS']",
    ],
)
def test_each_variable_holds_what_the_docs_say(deny: str) -> None:
    plan = check({"asset_name": "Sara 2"}, policy(deny), labels={"team": "red"})
    assert [v.rule for v in plan.violations] == ["rule"]
    assert plan.violations[0].error is None


def test_only_a_change_is_judged() -> None:
    plan = check({"asset_name": "Sara"}, policy("true"))
    assert plan.action is Action.NOOP and plan.violations == []


def test_the_match_chooses_the_assets_a_rule_is_about() -> None:
    typed = policy("true", match={"asset_type": ["VOICE_MODEL"]})
    assert check({"asset_name": "x"}, typed).violations == []
    labelled = policy("true", match={"labels": {"locked": "true"}})
    assert check({"asset_name": "x"}, labelled).violations == []
    assert check({"asset_name": "x"}, labelled, labels={"locked": "true"}).violations


@pytest.mark.parametrize(
    ("deny", "said"),
    [
        ("after.owner == 'x'", "could not evaluate: no such key or field"),
        ("after.asset_name", "could not evaluate: gave 'x', not true or false"),
        ("1 / 0 == 1", "could not evaluate"),
    ],
)
def test_a_rule_that_cannot_be_evaluated_is_a_violation_saying_why(deny: str, said: str) -> None:
    (violation,) = check({"asset_name": "x"}, policy(deny)).violations
    assert violation.error is not None and violation.error.startswith(said)


def test_after_put_replaces_sent_blocks_and_applies_property_operations() -> None:
    body = {
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": False}},
        "system_properties": [
            {"action": "DELETE", "key": "A"},
            {"action": "ADD", "key": "B", "value": "2"},
        ],
    }
    after = after_put(live(), body)
    assert after["asset_extra_meta"] == {"human_model_2d_meta": {"support_live": False}}
    assert after["system_properties"] == {"B": "2"}
    assert after["asset_name"] == "Sara"


def test_allow_policy_lets_an_asset_through_only_when_it_names_every_refusing_rule() -> None:
    both = AssetPlan(ID, Action.UPDATE, violations=[Violation("a", "m"), Violation("b", "m")])
    one = AssetPlan("a-2", Action.UPDATE, violations=[Violation("a", "m")])
    violated: list[tuple[str | None, AssetPlan]] = [("prod", both), ("prod", one)]
    assert refused(violated, []) == violated
    assert refused(violated, ["a"]) == [("prod", both)]
    assert refused(violated, ["a", "b"]) == []


def test_violations_survive_the_json_form_of_a_plan() -> None:
    plan = check({"asset_state": "UNACTIVED"}, policy("true"))
    again = AssetPlan.from_json(plan.to_json())
    assert again.violations == plan.violations


def test_changes_name_the_fields_changed_inside_a_block_and_the_properties() -> None:
    deny = (
        "'asset_extra_meta.human_model_2d_meta.support_live' in changes"
        " && 'system_properties.B' in changes"
    )
    spec = {
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": False}},
        "system_properties": {"B": "2"},
    }
    assert check(spec, policy(deny)).violations == [Violation("rule", "refused")]


def test_after_keeps_the_blocks_and_properties_the_change_does_not_touch() -> None:
    row = live(
        asset_extra_meta={
            "human_model_2d_meta": {"support_live": True},
            "image_meta": {"width": 1080},
        },
        system_properties=[{"key": "A", "value": "1"}, {"key": "C", "value": "3"}],
    )
    deny = (
        "after.asset_extra_meta.image_meta.width == 1080"
        " && !after.asset_extra_meta.human_model_2d_meta.support_live"
        " && after.system_properties == {'A': '1', 'B': '2', 'C': '3'}"
    )
    spec = {
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": False}},
        "system_properties": {"B": "2"},
    }
    assert check(spec, policy(deny), row=row).violations == [Violation("rule", "refused")]


def test_after_holds_what_is_sent_where_live_has_no_block_or_property_yet() -> None:
    bare = {k: v for k, v in live().items() if k not in ("asset_extra_meta", "system_properties")}
    body = {
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": False}},
        "system_properties": [{"action": "ADD", "key": "B", "value": "2"}],
    }
    after = after_put(bare, body)
    assert after["asset_extra_meta"] == {"human_model_2d_meta": {"support_live": False}}
    assert after["system_properties"] == {"B": "2"}


def test_after_holds_a_write_only_setting_as_sent_and_leaves_the_blocks_alone() -> None:
    deny = (
        "after.review_config.no_need_review"
        " && after.asset_extra_meta == {'human_model_2d_meta': {'support_live': true}}"
    )
    plan = check({"review_config": {"no_need_review": True}}, policy(deny))
    assert plan.body == {"review_config": {"no_need_review": True}}
    assert plan.violations == [Violation("rule", "refused")]


def test_a_target_without_a_name_is_the_default_target() -> None:
    given = Rules(policies=parse_policies([policy("target == 'default'")]))
    plan = diff_asset(Desired(ID, {"asset_name": "x"}, rules=given), live())
    assert plan.violations == [Violation("rule", "refused")]


def test_a_match_by_this_assets_id_and_type_chooses_it() -> None:
    by_id = policy("true", match={"asset_ids": ["other", ID]})
    assert check({"asset_name": "x"}, by_id).violations == [Violation("rule", "refused")]
    typed = policy("true", match={"asset_type": ["HUMAN_MODEL_2D"]})
    assert check({"asset_name": "x"}, typed).violations == [Violation("rule", "refused")]


@pytest.mark.parametrize(
    ("deny", "error"),
    [
        ("after.owner == 'x'", "could not evaluate: no such key or field: 'owner'"),
        ("1 / 0 == 1", "could not evaluate: division by zero in CEL expression"),
        ("after.asset_name", "could not evaluate: gave 'x', not true or false"),
        # a result is shown whole up to 60 characters, then cut to 57 and "..."
        ("'" + "a" * 58 + "'", f"could not evaluate: gave '{'a' * 58}', not true or false"),
        ("'" + "a" * 59 + "'", f"could not evaluate: gave '{'a' * 56}..., not true or false"),
    ],
)
def test_the_violation_of_a_rule_that_cannot_be_evaluated_says_why(deny: str, error: str) -> None:
    assert check({"asset_name": "x"}, policy(deny)).violations == [
        Violation("rule", "refused", error=error)
    ]


class _Failing:
    """A compiled condition whose evaluation fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def execute(self, context: dict[str, Any]) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (RuntimeError("  \n "), "could not evaluate: RuntimeError"),
        (RuntimeError("no such\n    overload"), "could not evaluate: no such overload"),
    ],
)
def test_a_failure_is_told_on_one_line_and_by_its_kind_when_it_says_nothing(
    error: Exception, said: str
) -> None:
    rule = PolicyRule("rule", "stub", "refused", program=_Failing(error))
    assert evaluate(rule, {}) == Violation("rule", "refused", error=said)
