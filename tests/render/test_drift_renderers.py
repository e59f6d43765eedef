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
