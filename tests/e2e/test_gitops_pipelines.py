"""The example pipelines in docs/examples: valid YAML, the promised structure, and every
``reconciler ...`` command line they run parses and works against the emulator."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from reconciler.cli.main import cli
from reconciler.emulator.testing import run_emulator
from reconciler.engine.state import DEFAULT_STATE_PATH

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / "docs" / "examples" / "github" / "workflows"
GITLAB = ROOT / "docs" / "examples" / "gitlab" / ".gitlab-ci.yml"
PRE_COMMIT = ROOT / ".pre-commit-hooks.yaml"


def load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def github_workflows() -> dict[str, Any]:
    return {p.name: load(p) for p in sorted(GITHUB.glob("*.yml"))}


def scripts() -> Iterator[tuple[str, str]]:
    """(where, shell script) for every script the example pipelines run."""
    for name, workflow in github_workflows().items():
        for job_name, job in workflow["jobs"].items():
            for step in job["steps"]:
                if "run" in step:
                    yield f"{name}:{job_name}", step["run"]
    for job_name, job in load(GITLAB).items():
        if isinstance(job, dict):
            for key in ("before_script", "script"):
                for entry in job.get(key, ()):
                    yield f".gitlab-ci.yml:{job_name}", entry


_SPLIT = re.compile(r"\|\||&&|;|\$\(")


def reconciler_commands(script: str) -> Iterator[tuple[list[str], str | None]]:
    """Each ``reconciler`` invocation in a shell script: its arguments and its stdout file."""
    joined = re.sub(r"\\\n\s*", " ", script)
    for line in joined.splitlines():
        if line.strip().startswith("#"):
            continue
        for segment in _SPLIT.split(line):
            if not segment.strip().startswith("reconciler "):
                continue
            words = shlex.split(segment.strip(), comments=True)
            args: list[str] = []
            stdout: str | None = None
            rest = iter(words[1:])
            for word in rest:
                if word in (">", "1>"):
                    stdout = next(rest)
                elif word == "2>":
                    next(rest)
                elif word == "|":
                    break
                else:
                    args.append(word)
            yield args, stdout


def all_commands() -> list[tuple[str, list[str], str | None]]:
    found = [
        (where, args, stdout)
        for where, script in scripts()
        for args, stdout in reconciler_commands(script)
    ]
    hooks = load(PRE_COMMIT)
    for hook in hooks:
        entry = shlex.split(hook["entry"])
        assert entry[0] == "reconciler"
        found.append((f".pre-commit-hooks.yaml:{hook['id']}", entry[1:] + hook["args"], None))
    return found


def parse(args: list[str]) -> None:
    """Fail like the CLI would on an unknown command or option."""
    name, *rest = args
    command = cli.commands.get(name)
    if command is None:
        raise click.UsageError(f"no such command {name!r}")
    command.make_context(name, rest)


def test_every_example_file_is_valid_yaml() -> None:
    files = [*GITHUB.glob("*.yml"), GITLAB, PRE_COMMIT]
    assert len(files) == 5
    for path in files:
        assert load(path), path


def test_every_command_line_parses() -> None:
    commands = all_commands()
    used = {args[0] for _, args, _ in commands}
    assert used == {"validate", "plan", "apply", "drift"}
    for where, args, _ in commands:
        try:
            parse(args)
        except click.ClickException as exc:  # pragma: no cover - the failure message
            pytest.fail(f"{where}: reconciler {' '.join(args)}: {exc.format_message()}")


def test_github_workflows_have_the_promised_shape() -> None:
    workflows = github_workflows()
    plan = workflows["reconciler-plan.yml"]
    assert "pull_request" in plan["on"]
    assert plan["permissions"]["pull-requests"] == "write"
    plan_runs = "\n".join(s.get("run", "") for s in plan["jobs"]["plan"]["steps"])
    assert "--format markdown" in plan_runs and "gh pr comment" in plan_runs

    apply = workflows["reconciler-apply.yml"]
    assert apply["on"]["push"]["branches"] == ["main"]
    assert apply["concurrency"]["cancel-in-progress"] is False
    assert apply["concurrency"]["group"]

    drift = workflows["reconciler-drift.yml"]
    assert drift["on"]["schedule"][0]["cron"]
    assert drift["permissions"]["issues"] == "write"
    assert drift["concurrency"]["group"] != apply["concurrency"]["group"]
    drift_runs = "\n".join(s.get("run", "") for s in drift["jobs"]["drift"]["steps"])
    assert "gh issue create" in drift_runs and "gh issue edit" in drift_runs

    # The write-only state is restored for plans and applies, and saved only by applies.
    def cache_steps(workflow: dict[str, Any], action: str) -> list[dict[str, Any]]:
        steps = next(iter(workflow["jobs"].values()))["steps"]
        return [s for s in steps if s.get("uses", "").startswith(action)]

    for workflow in (plan, apply):
        [restore] = cache_steps(workflow, "actions/cache/restore")
        assert restore["with"]["path"] == str(DEFAULT_STATE_PATH)
    [save] = cache_steps(apply, "actions/cache/save")
    assert save["with"]["path"] == str(DEFAULT_STATE_PATH) and save["if"] == "always()"
    assert not cache_steps(plan, "actions/cache/save")


def test_gitlab_pipeline_has_the_promised_shape() -> None:
    pipeline = load(GITLAB)
    assert pipeline["apply"]["resource_group"]
    assert pipeline["apply-force"]["extends"] == "apply"
    state_cache = pipeline["apply"]["cache"][0]
    assert state_cache["paths"] == [f"{DEFAULT_STATE_PATH.parent}/"]
    assert state_cache["policy"] == "pull-push"
    assert pipeline[".state-cache"]["cache"][0]["policy"] == "pull"
    assert "schedule" in pipeline["drift"]["rules"][0]["if"]
    assert "merge_request_event" in pipeline["plan"]["rules"][0]["if"]


@pytest.mark.e2e
def test_the_pipeline_commands_run_against_the_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run each distinct command line, in pipeline order, in a repository like the docs'."""
    asset_id = "93769b5a-c8c6-4692-9c95-53933a1f0c93"
    live = {
        "asset_id": asset_id,
        "asset_name": "Sara Model",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "tags": ["NEWS"],
    }
    monkeypatch.chdir(tmp_path)
    Path("manifests").mkdir()
    Path("manifests/sara.yaml").write_text(
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
        f"metadata: {{asset_id: {asset_id}}}\n"
        "spec: {asset_name: Sara Model, tags: [NEWS, FEMALE]}\n"
    )
    order = {"validate": 0, "plan": 1, "apply": 2, "drift": 3}
    distinct: dict[tuple[str, ...], str | None] = {}
    for _, args, stdout in all_commands():
        distinct.setdefault(tuple(args), stdout)
    with run_emulator([live]) as emu:
        for name, value in emu.env().items():
            monkeypatch.setenv(name, value)
        for args, stdout in sorted(distinct.items(), key=lambda item: order[item[0][0]]):
            result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
            assert result.exit_code == 0, (args, result.output)
            if stdout:
                Path(stdout).write_text(result.stdout)
        assert "tags" in Path("plan.md").read_text()  # the PR comment showed the change
        assert "\n## reconciler drift report\n" in Path("drift.md").read_text()
        assert emu.store.get(asset_id)["tags"] == ["NEWS", "FEMALE"]
