"""The starter set of docs/policies.md does what the docs say (users copy it as it is)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.api.rules import parse_policies
from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.guardrails import Rules

DOC = Path(__file__).parents[2] / "docs" / "policies.md"
ALLOWED = "0123456789abcdef0123456789abcdef"


def starter_set() -> Rules:
    section = DOC.read_text(encoding="utf-8").split("## A starter set", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    return Rules(policies=parse_policies(yaml.safe_load(block.group(1))["policies"]))


def avatar(live: bool) -> dict[str, Any]:
    return {
        "asset_id": "a-1",
        "asset_name": "Sara",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": live}},
    }


def refused_by(spec: dict[str, Any], row: dict[str, Any], **labels: str) -> list[str]:
    plan = diff_asset(Desired("a-1", spec, labels=labels, rules=starter_set()), row)
    assert all(v.error is None for v in plan.violations), plan.violations
    return [v.rule for v in plan.violations]


@pytest.mark.parametrize(
    ("spec", "live", "labels", "expected"),
    [
        ({"asset_state": "UNACTIVED"}, True, {}, ["keep-live-avatars-active"]),
        ({"asset_state": "UNACTIVED"}, False, {}, []),
        (
            {"shared_config": {"allowed_project_ids": ["elsewhere"]}},
            True,
            {},
            ["keep-sharing-inside-allowed-projects"],
        ),
        ({"shared_config": {"allowed_project_ids": [ALLOWED]}}, True, {}, []),
        ({"asset_name": "Other"}, True, {"locked": "true"}, ["no-renames-of-locked-assets"]),
        ({"asset_name": "Other"}, True, {"locked": "false"}, []),
        ({"asset_name": "Other"}, True, {}, []),
    ],
)
def test_each_starter_rule_refuses_what_it_says_and_nothing_else(
    spec: dict[str, Any], live: bool, labels: dict[str, str], expected: list[str]
) -> None:
    assert refused_by(spec, avatar(live), **labels) == expected
