"""The safety threshold: more than 30% of more than 10 managed assets changing."""

from __future__ import annotations

from reconciler.engine.plan import Action, AssetPlan, Plan
from reconciler.render.apply_text import threshold_message


def plan_of(changing: int, total: int) -> Plan:
    return Plan(
        assets=[
            AssetPlan(asset_id=f"a{i}", action=Action.UPDATE if i < changing else Action.NOOP)
            for i in range(total)
        ]
    )


def test_small_fleets_never_trip_the_threshold() -> None:
    assert threshold_message(plan_of(10, 10)) is None


def test_thirty_percent_exactly_is_allowed() -> None:
    assert threshold_message(plan_of(6, 20)) is None


def test_above_thirty_percent_names_the_numbers() -> None:
    message = threshold_message(plan_of(7, 20))
    assert message is not None
    assert "7 of 20" in message
    assert "35%" in message
    assert "--force" in message


def test_errors_and_blocked_do_not_count_as_changes() -> None:
    plan = plan_of(0, 20)
    for row in plan.assets[:10]:
        row.action = Action.ERROR
    assert threshold_message(plan) is None


def test_the_policy_moves_both_limits() -> None:
    from reconciler.engine.safety import SafetyPolicy, threshold

    assert threshold(plan_of(7, 20), SafetyPolicy(max_change_percent=35)) is None
    crossing = threshold(plan_of(8, 20), SafetyPolicy(max_change_percent=35))
    assert crossing is not None and crossing.max_change_percent == 35
    assert threshold(plan_of(5, 5), SafetyPolicy(min_assets=6)) is None
    assert threshold(plan_of(5, 5), SafetyPolicy(min_assets=5)) is not None
    assert threshold(plan_of(1, 20), SafetyPolicy(max_change_percent=0)) is not None
    assert threshold(plan_of(20, 20), SafetyPolicy(max_change_percent=100)) is None
