"""Run the example GitHub workflows' reconciler steps the way a runner would.

Third-party actions (checkout, cache, upload-artifact, setup-python) are skipped: the test
works in a prepared folder. The reconciler action (``your-org/reconciler@<sha>``) is this
repository's ``action.yml``: its own bash steps run unchanged, with ``${{ }}`` expressions
resolved from the step's ``with:``, the workflow's secrets and variables, and earlier outputs.
The install step finds the tool already there (a venv linked where it would put one), so no
package is downloaded. Only the expression forms the examples use are understood; anything
else fails the test, so an example cannot quietly depend on something this runner ignores.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
WORKFLOWS = ROOT / "docs" / "examples" / "github" / "workflows"
OUR_ACTION = re.compile(r"^your-org/reconciler@([0-9a-f]{40})$")
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# Credentials a developer's shell might hold; a workflow step only sees what it maps itself.
_CREDENTIALS = re.compile(r"^(HUAWEICLOUD_SDK_|HW_)")


def require_full_history() -> None:
    """Skip unless this is a git checkout with its history (a shallow clone lacks old commits)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    shallow = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shallow.stdout.strip() != "false":
        pytest.skip("a shallow clone: the pinned commit may not be in it")


def load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", "false", 0)


@dataclass
class Context:
    """What expressions can see."""

    inputs: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    github: dict[str, str] = field(default_factory=dict)
    steps: dict[str, dict[str, str]] = field(default_factory=dict)

    def value(self, expression: str) -> Any:
        expression = expression.strip()
        if "&&" in expression:
            return all(_truthy(self.value(part)) for part in expression.split("&&"))
        if m := re.fullmatch(r"(.+?)\s*(!=|==)\s*'([^']*)'", expression):
            left = str(self.value(m[1]) or "")
            return (left == m[3]) == (m[2] == "==")
        if expression.startswith("!"):
            return not _truthy(self.value(expression[1:]))
        if expression == "always()":
            return True
        if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression):
            return self.steps.get(m[1], {}).get(m[2], "")
        if m := re.fullmatch(r"(inputs|secrets|vars|github)\.([\w-]+)", expression):
            scope: dict[str, Any] = getattr(self, m[1])
            if m[2] not in scope:
                raise AssertionError(f"{expression}: not provided by the test")
            return scope[m[2]]
        raise AssertionError(f"expression the test runner does not understand: {expression!r}")

    def substitute(self, text: Any) -> str:
        if not isinstance(text, str):
            return "true" if text is True else "false" if text is False else str(text)
        whole = _EXPRESSION.fullmatch(text.strip())
        if whole:
            value = self.value(whole[1])
            return "true" if value is True else "false" if value is False else str(value)
        return _EXPRESSION.sub(lambda m: str(self.value(m[1])), text)

    def condition(self, step: Mapping[str, Any]) -> bool:
        condition = step.get("if")
        if condition is None:
            return True
        match = _EXPRESSION.fullmatch(str(condition).strip())
        return _truthy(self.value(match[1] if match else str(condition)))


@dataclass
class StepResult:
    name: str
    code: int
    outputs: dict[str, str]
    stdout: str


@dataclass
class Runner:
    """A GitHub runner's view of one repository folder."""

    workdir: Path
    temp: Path
    api_url: str
    repository: str = "acme/assets"
    secrets: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    network: dict[str, str] = field(default_factory=dict)  # e.g. the endpoint override
    token: str = ""

    def link_tool(self) -> None:
        """Put the test venv where the install step keeps its venv, so it installs nothing."""
        digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
        venv = self.temp / f"reconciler-{digest}"
        if not venv.exists():
            venv.symlink_to(Path(sys.prefix))

    def run_workflow(
        self, name: str, event: str, payload: dict[str, Any], inputs: dict[str, Any] | None = None
    ) -> list[StepResult]:
        """Run every job's steps in order, as ``event`` would; returns the reconciler steps."""
        workflow = load(WORKFLOWS / name)
        assert event in workflow["on"], f"{name} does not run on {event}"
        event_path = self.temp / f"event-{event}.json"
        event_path.write_text(json.dumps(payload), encoding="utf-8")
        ran: list[StepResult] = []
        for job in workflow["jobs"].values():
            dispatch = workflow["on"].get("workflow_dispatch") or {}
            defaults = {k: v.get("default") for k, v in (dispatch.get("inputs") or {}).items()}
            ctx = Context(
                inputs={**defaults, **(inputs or {})},
                secrets=self.secrets,
                vars=self.vars,
                github={"token": self.token, "run_id": "1", "event_name": event},
            )
            job_env = {k: ctx.substitute(v) for k, v in (job.get("env") or {}).items()}
            failed = False
            for step in job["steps"]:
                if failed and "always()" not in str(step.get("if", "")):
                    continue
                if not ctx.condition(step):
                    continue
                uses = step.get("uses", "")
                step_env = {k: ctx.substitute(v) for k, v in (step.get("env") or {}).items()}
                env = {**job_env, **step_env}
                if "run" in step:
                    result = self._bash(ctx.substitute(step["run"]), env, event_path)
                elif OUR_ACTION.match(uses):
                    with_ = {k: ctx.substitute(v) for k, v in (step.get("with") or {}).items()}
                    result = self._action(with_, env, event_path)
                    ran.append(result)
                else:
                    assert uses.startswith("actions/"), f"unexpected action {uses}"
                    continue
                if step.get("id"):
                    ctx.steps[step["id"]] = result.outputs
                failed = failed or result.code != 0
        return ran

    def _action(self, with_: dict[str, str], env: dict[str, str], event_path: Path) -> StepResult:
        action = load(ACTION)
        declared = action["inputs"]
        unknown = set(with_) - set(declared)
        assert not unknown, f"inputs action.yml does not declare: {unknown}"
        ctx = Context(github={"token": self.token, "action_path": str(ROOT)})
        ctx.inputs = {k: ctx.substitute(v.get("default", "")) for k, v in declared.items()}
        ctx.inputs.update(with_)
        last = StepResult("", 0, {}, "")
        for step in action["runs"]["steps"]:
            if not ctx.condition(step):
                continue
            if "uses" in step:
                assert step["uses"].startswith("actions/setup-python@")
                continue
            step_env = {k: ctx.substitute(v) for k, v in (step.get("env") or {}).items()}
            last = self._bash(ctx.substitute(step["run"]), {**env, **step_env}, event_path)
            last.name = ctx.substitute(step.get("name", ""))
            if step.get("id"):
                ctx.steps[step["id"]] = last.outputs
            if last.code != 0:
                return last
        return last

    def _bash(self, script: str, env: Mapping[str, str], event_path: Path) -> StepResult:
        output = self.temp / "github-output"
        output.write_text("", encoding="utf-8")
        base = {k: v for k, v in os.environ.items() if not _CREDENTIALS.match(k)}
        full = {
            **base,
            **self.network,
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_API_URL": self.api_url,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_REPOSITORY": self.repository,
            "GITHUB_STEP_SUMMARY": str(self.temp / "step-summary.md"),
            "RUNNER_TEMP": str(self.temp),
            **env,
        }
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
            cwd=self.workdir,
            env=full,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        outputs = dict(
            line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
        )
        return StepResult("", done.returncode, outputs, done.stdout + done.stderr)
