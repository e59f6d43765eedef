"""Global options are accepted after the subcommand as well as before it."""

from __future__ import annotations

import json

import pytest
from cli_process import DemoProject
from click.testing import CliRunner

from reconciler.cli.global_options import GLOBALS
from reconciler.cli.main import cli

pytestmark = pytest.mark.e2e


def test_options_before_and_after_the_subcommand_mean_the_same(demo_project: DemoProject) -> None:
    url, project = demo_project.emulator.base_url, demo_project.emulator.project_id
    env = demo_project.env()
    del env["HUAWEICLOUD_SDK_PROJECT_ID"], env["HW_REGION_NAME"]
    where = ["--endpoint", url, "--project-id", project]
    before = demo_project.run(*where, "--no-color", "plan", "manifests", env=env)
    after = demo_project.run("plan", "manifests", *where, "--no-color", env=env)
    mixed = demo_project.run("--endpoint", url, "plan", "--project-id", project, env=env)
    assert before.returncode == after.returncode == mixed.returncode == 0, after.stderr
    assert "will be updated in-place" in after.stdout
    assert before.stdout == after.stdout == mixed.stdout


def test_a_value_after_the_subcommand_wins(demo_project: DemoProject) -> None:
    result = demo_project.run(
        "--project-id", "wrong-project", "plan", "--project-id", "p-test", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    (planned,) = json.loads(result.stdout)["targets"]
    assert planned["project_id"] == "p-test"
    assert planned["summary"]["to_change"] > 0  # the project's assets were read and diffed


def test_verbosity_adds_up_and_log_format_applies_after_the_subcommand(
    demo_project: DemoProject,
) -> None:
    once = demo_project.run("-v", "plan")
    twice = demo_project.run("-v", "plan", "-v")
    assert "DEBUG" not in once.stderr
    assert "DEBUG reconciler.api.client: GET /v1/p-test/digital-assets -> 200" in twice.stderr
    as_json = demo_project.run("plan", "-vv", "--log-format", "json")
    assert as_json.returncode == 0
    assert as_json.stderr.lstrip().startswith("{")


def test_config_after_the_subcommand_is_read(demo_project: DemoProject) -> None:
    missing = demo_project.run("plan", "--config", "nowhere.yaml")
    assert missing.returncode == 1
    assert "config file nowhere.yaml not found (from --config)" in missing.stderr
    unknown = demo_project.run("validate", "manifests", "--target", "prod")
    assert unknown.returncode == 0  # validate is offline: a target changes nothing


def test_every_subcommand_accepts_them_and_says_so() -> None:
    runner = CliRunner()
    for command in (["validate"], ["plan"], ["apply"], ["drift"], ["show"], ["import"]):
        result = runner.invoke(cli, [*command, "--help"])
        assert "Global options (--config, --target" in result.output, command
    serve = runner.invoke(cli, ["emulator", "serve", "--help"]).output
    assert "Project [env: HUAWEICLOUD_SDK_PROJECT_ID]" in serve  # its own --project-id stays
    flags = {decl for spec in GLOBALS for decl in spec.decls}
    assert flags == {
        "--config",
        "--target",
        "--endpoint",
        "--project-id",
        "--region",
        "--no-color",
        "-v",
        "--verbose",
        "--log-format",
        "--timeout",
    }
