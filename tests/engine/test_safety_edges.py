"""The safety threshold at its edges: tiny fleets with a low ``min_assets`` setting."""

from __future__ import annotations

from reconciler.engine.plan import Action, AssetPlan, Plan
from reconciler.engine.safety import SafetyPolicy, threshold


def plan_of(changing: int, total: int) -> Plan:
    return Plan(
        assets=[
            AssetPlan(asset_id=f"a{i}", action=Action.UPDATE if i < changing else Action.NOOP)
            for i in range(total)
        ]
    )


def test_with_min_assets_1_a_single_managed_asset_changing_needs_force() -> None:
    crossing = threshold(plan_of(1, 1), SafetyPolicy(max_change_percent=30, min_assets=1))
    assert crossing is not None
    assert (crossing.changing, crossing.managed, crossing.share) == (1, 1, 1.0)


def test_with_min_assets_0_an_empty_plan_is_never_a_crossing() -> None:
    assert threshold(plan_of(0, 0), SafetyPolicy(max_change_percent=0, min_assets=0)) is None
    crossing = threshold(plan_of(1, 2), SafetyPolicy(max_change_percent=0, min_assets=0))
    assert crossing is not None and crossing.max_share == 0.0
