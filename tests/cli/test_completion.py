"""``reconciler completion bash|zsh|fish`` prints a script that completes commands and options."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from cli_process import CONSOLE_SCRIPT, clean_env


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONSOLE_SCRIPT, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ("bash", "complete -o nosort -F _reconciler_completion reconciler"),
        ("zsh", "#compdef reconciler"),
        ("fish", "complete --no-files --command reconciler"),
    ],
)
def test_prints_the_script_for_each_shell(shell: str, expected: str) -> None:
    result = run("completion", shell)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert "_RECONCILER_COMPLETE" in result.stdout


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = run("completion", "tcsh")
    assert result.returncode != 0
    assert "tcsh" in result.stderr and "bash" in result.stderr


def _complete(words: str) -> list[str]:
    env = clean_env(
        {
            "_RECONCILER_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
    )
    result = run(env=env)
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


def test_completes_commands_options_and_choices() -> None:
    assert _complete("reconciler pl") == ["plan"]
    assert "completion" in _complete("reconciler ")
    assert "--detailed-exitcode" in _complete("reconciler plan --de")
    assert _complete("reconciler plan --format ") == ["text", "markdown", "json"]
    assert _complete("reconciler completion ") == ["bash", "zsh", "fish"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_bash_script_works_in_bash() -> None:
    script = (
        'eval "$(reconciler completion bash)"\n'
        "COMP_WORDS=(reconciler dr); COMP_CWORD=1\n"
        "_reconciler_completion reconciler\n"
        'echo "${COMPREPLY[@]}"\n'
    )
    env = clean_env({"PATH": f"{os.path.dirname(CONSOLE_SCRIPT)}:{os.environ['PATH']}"})
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["drift"]
