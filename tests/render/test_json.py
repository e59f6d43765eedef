"""The JSON plan: versioned, stable, and a lossless view of the Plan."""

from __future__ import annotations

import json

from plan_samples import sample_plan

from reconciler.engine.plan import FORMAT_VERSION, Plan, PlanSet
from reconciler.render import json as json_render


def test_round_trip_is_lossless() -> None:
    plan = sample_plan()
    again = PlanSet.from_json(json.loads(json_render.render(plan)))
    assert again == PlanSet.of(plan)
    assert json_render.render(again) == json_render.render(plan)


def test_the_document_holds_a_list_of_targets_each_with_its_summary() -> None:
    staging = sample_plan()
    staging.target, staging.project_id = "staging", "p2"
    staging.assets = staging.assets[:1]
    down = Plan([], target="sg", project_id="p3", error="cannot reach MetaStudio", unplanned=2)
    data = json.loads(json_render.render(PlanSet([sample_plan(), staging, down])))
    assert data["format_version"] == "2.2"
    assert [t["target"] for t in data["targets"]] == ["prod", "staging", "sg"]
    assert data["targets"][1]["summary"] == {
        "to_change": 1,
        "unchanged": 0,
        "errors": 0,
        "blocked": 0,
        "ignored_fields": 0,
        "violations": 0,
    }
    assert data["targets"][2]["error"] == "cannot reach MetaStudio"
    assert data["targets"][2]["unplanned"] == 2 and data["targets"][2]["assets"] == []
    assert data["summary"] == {
        "to_change": 2,
        "unchanged": 1,
        "errors": 1,
        "blocked": 1,
        "ignored_fields": 0,
        "violations": 0,
        "failed_targets": 1,
    }


def test_format_version_comes_first() -> None:
    data = json.loads(json_render.render(sample_plan()))
    assert next(iter(data)) == "format_version"
    assert data["format_version"] == FORMAT_VERSION
    assert data["summary"] == {
        "to_change": 1,
        "unchanged": 1,
        "errors": 1,
        "blocked": 1,
        "ignored_fields": 0,
        "violations": 0,
        "failed_targets": 0,
    }


def test_each_asset_has_action_before_after_body_and_errors() -> None:
    data = json.loads(json_render.render(sample_plan()))
    by_id = {a["asset_id"]: a for a in data["targets"][0]["assets"]}
    sara = by_id["93769b5a-c8c6-4692-9c95-53933a1f0c93"]
    assert sara["action"] == "update"
    assert sara["body"]["asset_name"] == "Sara Model"
    change = next(c for c in sara["changes"] if c["path"] == "asset_name")
    assert (change["before"], change["after"]) == ("Sara", "Sara Model")
    tags = next(c for c in sara["changes"] if c["path"] == "tags")
    assert (tags["added"], tags["removed"]) == (["NEWS"], ["OLD"])
    gone = by_id["0d7a3a4e-5a5e-4a8f-bb1e-4f1c2d3e4f50"]
    assert gone["action"] == "error" and gone["error_code"] == "MSS.10001001"
    assert gone["body"] is None


def test_keys_come_in_the_documented_order() -> None:
    """docs/plan.md lists the keys in this order; scripts diffing two plans rely on it."""
    data = json.loads(json_render.render(sample_plan()))
    assert list(data) == ["format_version", "created_at", "summary", "targets"]
    assert list(data["targets"][0]) == [
        "target",
        "project_id",
        "endpoint",
        "created_at",
        "error",
        "unplanned",
        "summary",
        "warnings",
        "assets",
    ]
    assert list(data["targets"][0]["assets"][0])[:6] == [
        "asset_id",
        "name",
        "asset_type",
        "action",
        "source",
        "app_user_id",
    ]


def test_text_is_indented_utf8_with_one_trailing_newline() -> None:
    text = json_render.render(sample_plan())
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.startswith('{\n  "format_version"')
    assert "\\u" not in text  # non-ASCII stays readable, not escaped
