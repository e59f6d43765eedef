"""The plan command's pure parts: exit codes and selector parsing."""

from __future__ import annotations

import click
import pytest
from plan_samples import in_sync_plan, sample_plan

from reconciler.cli.plan import exit_code, parse_selectors
from reconciler.engine.plan import Action, AssetPlan, Plan, PlanSet


def test_exit_codes() -> None:
    changed = Plan(assets=[AssetPlan(asset_id="a", action=Action.UPDATE, body={"x": 1})])
    assert exit_code(PlanSet.of(in_sync_plan()), detailed=True) == 0
    assert exit_code(PlanSet.of(changed), detailed=False) == 0
    assert exit_code(PlanSet.of(changed), detailed=True) == 2
    # an error row wins over changes
    assert exit_code(PlanSet.of(sample_plan()), detailed=True) == 1
    blocked = Plan(assets=[AssetPlan(asset_id="b", action=Action.BLOCKED)])
    assert exit_code(PlanSet.of(blocked), detailed=True) == 0


def test_exit_codes_aggregate_over_targets() -> None:
    changed = Plan(assets=[AssetPlan(asset_id="a", action=Action.UPDATE, body={"x": 1})])
    down = Plan([], target="sg", error="cannot reach MetaStudio", unplanned=3)
    assert exit_code(PlanSet([in_sync_plan(), changed]), detailed=True) == 2
    assert exit_code(PlanSet([in_sync_plan(), in_sync_plan()]), detailed=True) == 0
    assert exit_code(PlanSet([changed, down]), detailed=True) == 1  # a failed target wins
    assert exit_code(PlanSet([changed, sample_plan()]), detailed=True) == 1


def test_selectors() -> None:
    assert parse_selectors(["team=video", "tier = gold"]) == (
        ("team", "video"),
        ("tier", "gold"),
    )
    assert parse_selectors(["empty="]) == (("empty", ""),)
    for bad in ("team", "=video"):
        with pytest.raises(click.BadParameter, match="KEY=VALUE"):
            parse_selectors([bad])
