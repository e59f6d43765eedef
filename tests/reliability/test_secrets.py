"""Secrets never reach output: not at any log level, not in JSON logs, not on error paths, not in
plan files, not in the emulator's request log."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from bench import process

from .harness import CliResult, Project, run_measured
from .hostile import hostile_service

pytestmark = pytest.mark.reliability

AK = "AKVISIBLEACCESSKEY42"
SK = "sk-Very-Secret-Value-9f8e7d"
SECURITY_TOKEN = "sectok-Temporary-Secret-1a2b3c"
TOKEN = "iam-token-Secret-Value-4d5e6f"
SECRETS = (AK, SK, SECURITY_TOKEN, TOKEN)
LOG_MODES = (["-v"], ["-vv"], ["-vv", "--log-format", "json"])
COMMANDS = (["plan", "manifests"], ["apply", "manifests", "--auto-approve"], ["drift", "manifests"])


def secret_env(project: Project, **overrides: str) -> dict[str, str]:
    env = dict(project.env)
    env.update(
        HUAWEICLOUD_SDK_AK=AK,
        HUAWEICLOUD_SDK_SK=SK,
        HUAWEICLOUD_SDK_SECURITY_TOKEN=SECURITY_TOKEN,
        HW_AUTH_TOKEN=TOKEN,
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v}


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret appears in {where}"


def run(project: Project, env: dict[str, str], *args: str) -> CliResult:
    result = project.cli(*args, env=env)
    if "-vv" not in args:  # -vv may show the traceback of a failure, on purpose, for debugging
        result.assert_clean()
    assert_no_secret(result.output, " ".join(args))
    return result


def test_no_secret_in_successful_runs_at_any_log_level(project: Project) -> None:
    project.env = secret_env(project)
    plan_file = project.root / "saved.plan.json"
    with project.emulator():
        for mode in LOG_MODES:
            result = run(project, project.env, *mode, "plan", "manifests", "--out", str(plan_file))
            assert result.returncode == 0, result.output
            result = run(project, project.env, *mode, "drift", "manifests", "--format", "json")
            assert result.returncode == 2, result.output
        assert_no_secret(plan_file.read_text(), "the plan file")
        applied = run(project, project.env, "-vv", "apply", str(plan_file), "--auto-approve")
        assert applied.returncode == 0, applied.output
    for path in project.root.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".jsonl", ".log", ".sqlite", ".yaml"}:
            assert_no_secret(path.read_text(errors="replace"), str(path.name))


def test_no_secret_on_error_paths(project: Project) -> None:
    """Each failure once per log mode: 500s, a wrong SK, a wrong token, the service gone."""
    project.env = secret_env(project)
    project.fail_fast()
    wrong_sk = secret_env(project, HUAWEICLOUD_SDK_SK="sk-Wrong-" + SK)
    wrong_token = secret_env(
        project, HUAWEICLOUD_SDK_AK="", HUAWEICLOUD_SDK_SK="", HW_AUTH_TOKEN=TOKEN + "-x"
    )
    with project.emulator(fail_rate=1.0):
        for mode, command in zip(LOG_MODES, COMMANDS, strict=True):
            result = run(project, project.env, *mode, *command)
            assert result.returncode == 1, result.output
    with project.emulator():
        for mode, command in zip(LOG_MODES, COMMANDS, strict=True):
            for env in (wrong_sk, wrong_token):
                result = run(project, env, *mode, *command)
                assert result.returncode == 1, result.output
    for mode in LOG_MODES:  # the service is gone: connection errors carry no credentials either
        result = run(project, project.env, *mode, "plan", "manifests")
        assert result.returncode == 1


def test_emulator_log_holds_no_secret(project: Project, tmp_path: Path) -> None:
    project.env = secret_env(project)
    with project.emulator() as emu:
        run(project, project.env, "plan", "manifests")
    assert_no_secret(emu.log.read_text(errors="replace"), "the emulator's output")
    assert_no_secret("".join(p.read_text() for p in project.records if p.exists()), "request log")


ODD_TOKEN = 'iam/Token+With="quotes"\\and=padding=='


def test_escaped_forms_of_a_secret_are_redacted(tmp_path: Path) -> None:
    """A service that echoes the token back repr-, JSON- and URL-escaped does not get it printed
    in any of those forms, at any log level."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "e.yaml").write_text(
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\nmetadata: {asset_id: e-1}\n"
        "spec: {asset_name: Echo}\n"
    )
    env = {k: v for k, v in process.credentials_env().items() if "_AK" not in k and "_SK" not in k}
    env["HW_AUTH_TOKEN"] = ODD_TOKEN
    forms = {
        ODD_TOKEN,
        repr(ODD_TOKEN)[1:-1],
        json.dumps(ODD_TOKEN)[1:-1],
        quote(ODD_TOKEN, safe=""),
        quote_plus(ODD_TOKEN, safe=""),
    }
    assert len(forms) == 4  # repr, JSON, URL encoding each differ from the value
    with hostile_service(["e-1"]) as service:
        service.set_mode("echo")
        for mode in ([], ["-vv", "--log-format", "json"]):
            argv = process.reconciler_argv(service.endpoint, *mode, "plan", "manifests")
            result = run_measured(argv, env=env, cwd=tmp_path, timeout=30)
            assert result.returncode == 1, result.output
            assert "bad token" in result.output  # the echo arrived and was shown, redacted
            for form in forms:
                assert form not in result.output, f"{form!r} printed with {mode}"
            assert result.wall_s < 10
        assert service.requests >= 2
