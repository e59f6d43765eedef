"""The CI examples as a newcomer first meets them: a pull request from a fork, and an Action
input combination that cannot work, each told in words instead of a red job or raw text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.forges import Forge
from tests.e2e.test_github_pipelines import PR, forge, runner  # noqa: F401 - fixtures
from tests.e2e.workflow_runner import ROOT, WORKFLOWS, Runner, load

pytestmark = pytest.mark.e2e


def test_a_pull_request_without_secrets_skips_its_plan_with_a_notice(
    runner: Runner,  # noqa: F811 - the fixture
    forge: Forge,  # noqa: F811 - the fixture
) -> None:
    # What GitHub gives a pull request from a fork: every secret empty.
    runner.secrets = {name: "" for name in runner.secrets}
    ran = runner.run_workflow("reconciler-plan.yml", "pull_request", PR)
    assert ran == []  # the reconciler step did not run, and no step failed
    assert forge.comments.get(7, []) == []
    # The guard step's own words, as the job log shows them.
    guard = next(
        step
        for step in load(WORKFLOWS / "reconciler-plan.yml")["jobs"]["plan"]["steps"]
        if step.get("id") == "guard"
    )
    output = runner.temp / "guard-output"
    done = subprocess.run(
        ["bash", "-e", "-c", guard["run"]],
        env={**os.environ, "READ_AK": "", "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith(
        "::notice title=reconciler plan skipped::No secrets reach this run (a pull request "
        "from a fork or from Dependabot), so it cannot read MetaStudio."
    ), done.stdout
    assert output.read_text() == "skip=true\n"
    # With secrets, the guard lets the plan run.
    present = subprocess.run(
        ["bash", "-e", "-c", guard["run"]],
        env={**os.environ, "READ_AK": "read-ak", "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert present.returncode == 0 and present.stdout == ""
    assert output.read_text() == "skip=true\n"  # unchanged: nothing appended


@pytest.mark.parametrize("command", ["plan", "drift"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_action_refuses_a_comment_that_would_not_be_markdown(
    tmp_path: Path, command: str, fmt: str
) -> None:
    """``comment: true`` posts Markdown; with another format the action stops before running
    anything, naming both inputs, instead of posting raw text."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "HUAWEICLOUD_", "HW_"))
    }
    env.update(
        INPUT_COMMAND=command,
        INPUT_FORMAT=fmt,
        INPUT_COMMENT="true",
        GITHUB_OUTPUT=str(tmp_path / "output"),
        RUNNER_TEMP=str(tmp_path),
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "action" / "run.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == (
        f"::error::input 'comment' needs format 'markdown' ({command} reports are posted as "
        "Markdown); set comment: false to keep a text or JSON report\n"
    )
    assert not (tmp_path / "output").exists()  # nothing ran, no output was set
