"""Drift renderers on constructed reports: issue-size cap, escaping, exit codes."""

from __future__ import annotations

from reconciler.engine.drift import (
    AssetDrift,
    DriftReport,
    DriftStatus,
    FieldDrift,
    ProjectDrift,
)
from reconciler.render import drift_markdown, drift_text


def report(n: int, status: DriftStatus = DriftStatus.DRIFTED) -> DriftReport:
    assets = [
        AssetDrift(
            asset_id=f"id-{i:05d}",
            status=status,
            name=f"Asset {i}",
            fields=[FieldDrift("asset_description", "x" * 200, "y" * 200)],
        )
        for i in range(n)
    ]
    project = ProjectDrift("prod", "p1", None, assets, [], total=n, managed=n)
    return DriftReport([project], generated_at="2025-01-01T00:00:00Z")


def test_markdown_stays_under_the_issue_body_limit_and_says_what_it_left_out() -> None:
    body = drift_markdown.render(report(2000))
    assert 65_536 - 1_000 < len(body) <= 65_536
    assert body.startswith("<!-- reconciler:drift target=prod -->\n")
    assert "| drifted | 2000 |" in body
    shown = body.count("<details>")
    assert f"{2000 - shown} of 2000 assets not in sync are not shown" in body
    assert "--format json" in body


def test_small_reports_are_complete() -> None:
    body = drift_markdown.render(report(3))
    assert "not shown" not in body
    assert body.count("<details>") == 3


def test_exit_codes() -> None:
    assert report(0).exit_code == 0
    assert report(2).exit_code == 2
    assert report(1, DriftStatus.MISSING).exit_code == 2
    assert report(1, DriftStatus.BLOCKED).exit_code == 2
    assert report(1, DriftStatus.ERROR).exit_code == 1


def test_text_names_the_target_project_and_time() -> None:
    text = drift_text.render(report(1))
    assert text.startswith('Drift report for target "prod", project p1, at 2025-01-01T00:00:00Z.')
    assert text.rstrip().endswith("Coverage: 1 of 1 asset managed (100.0%).")


def test_several_targets_report_each_project_and_a_failed_one_under_itself() -> None:
    prod = report(2).projects[0]
    down = ProjectDrift(
        "sg", "p3", None, [], [], total=0, managed=0, error="cannot reach", unchecked_manifests=4
    )
    both = DriftReport([prod, down], generated_at="2025-01-01T00:00:00Z")
    assert both.exit_code == 1 and both.failed == [down]
    out = drift_text.render(both)
    assert 'Target "prod": 2 drifted, 0 missing, 0 blocked, 0 error(s), 0 unmanaged.' in out
    assert "Error: this target could not be checked (4 manifests not checked): cannot reach" in out
    assert out.index('target "prod"') < out.index('target "sg"')
    body = drift_markdown.render(both)
    assert "| <code>sg</code> | <code>p3</code> | could not be checked | | |" in body
    assert "could not be checked (4 manifests not checked)" in body
    assert both.to_json()["projects"][1]["error"] == "cannot reach"
    assert both.to_json()["summary"]["failed_targets"] == 1
    assert DriftReport([down]).to_json()["in_sync"] is False


def test_every_format_says_since_when_an_asset_drifted_where_history_knows_it() -> None:
    import html
    import json

    from reconciler.engine.history import Episode
    from reconciler.render import drift_json

    drift = report(2)
    drift.projects[0].add_history(
        {"id-00000": Episode("p1", "id-00000", "drifted", "2024-12-31T08:00:00Z", "t", 7, (), None)}
    )
    text = drift_text.render(drift)
    assert "drifted since 2024-12-31T08:00:00Z (7 checks)" in text
    assert text.count("drifted since") == 1  # the other asset has no history
    body = html.unescape(drift_markdown.render(drift))
    assert "): drifted since 2024-12-31T08:00:00Z (7 checks): asset_description" in body
    assert "Drifted since 2024-12-31T08:00:00Z (7 checks)." in body
    assets = json.loads(drift_json.render(drift))["projects"][0]["assets"]
    assert [(a["drifted_since"], a["drift_cycles"]) for a in assets] == [
        ("2024-12-31T08:00:00Z", 7),
        (None, None),
    ]


def test_drift_colours_are_the_plan_colours() -> None:
    from plan_samples import sample_plan

    from reconciler.render import text

    plan_lines = text.render(sample_plan(), color=True)
    drift_lines = drift_text.render(report(1), color=True)
    yellow_tilde = "\x1b[33m~\x1b[0m"
    assert yellow_tilde in plan_lines
    assert f"  {yellow_tilde} asset_description" in drift_lines  # marker coloured, not the name
    assert "\x1b[1m# asset " in drift_lines and "\x1b[1m  # asset " in plan_lines  # bold headers
    assert "\x1b[33masset_description" not in drift_lines
