"""``reconciler show PLANFILE`` prints a saved plan as text, Markdown or JSON."""

from __future__ import annotations

import json

import pytest
from cli_process import DemoProject

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def saved(demo_project: DemoProject) -> str:
    result = demo_project.run("plan", "manifests", "--out", "saved.plan")
    assert result.returncode == 0, result.stderr
    return "saved.plan"


def test_text_is_the_plan_as_plan_printed_it(demo_project: DemoProject, saved: str) -> None:
    planned = demo_project.run("plan", "manifests").stdout
    shown = demo_project.run("show", saved)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == planned
    assert f"Saved plan {saved} (reconciler " in shown.stderr
    assert "project p-test" in shown.stderr


def test_markdown_and_json(demo_project: DemoProject, saved: str) -> None:
    env = demo_project.env(GITHUB_SHA="ab" * 20, GITHUB_REPOSITORY="acme/a", GITHUB_RUN_ID="9")
    markdown = demo_project.run("show", saved, "--format", "markdown", env=env)
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout.startswith("<!-- reconciler:plan target=default -->\n")
    assert "[CI run](https://github.com/acme/a/actions/runs/9)" in markdown.stdout
    document = json.loads(demo_project.run("show", saved, "--format", "json").stdout)
    assert document["format_version"] == "2.2"
    assert document["summary"]["to_change"] >= 1
    assert [t["project_id"] for t in document["targets"]] == ["p-test"]


def test_a_missing_or_edited_file_is_a_clear_error(demo_project: DemoProject, saved: str) -> None:
    missing = demo_project.run("show", "nope.plan")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: plan file nope.plan does not exist"
    edited = demo_project.root / "edited.plan"
    edited.write_text(
        (demo_project.root / saved).read_text().replace('"p-test"', '"p-other"'), encoding="utf-8"
    )
    result = demo_project.run("show", "edited.plan")
    assert result.returncode == 1
    assert "was modified after it was written" in result.stderr
    assert "Traceback" not in result.stderr
