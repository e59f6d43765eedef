"""The command group: sub-commands are imported only when they run (``--help`` still lists
every one of them), usage errors exit 1 (never 2), and ``--version``."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from reconciler import __version__
from reconciler.cli.commands import COMMANDS
from reconciler.cli.main import cli

PROBE = """
import sys
from reconciler.cli.main import cli
try:
    cli.main(sys.argv[1:], prog_name="reconciler", standalone_mode=False)
finally:
    heavy = ("starlette", "uvicorn", "reconciler.emulator", "reconciler.cli.demo")
    print("LOADED", sorted(m for m in heavy if m in sys.modules), file=sys.stderr)
"""


def loaded_by(*args: str) -> str:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60
    )
    return run.stderr.rsplit("LOADED ", 1)[1].strip()


def test_plan_does_not_import_the_emulator() -> None:
    assert loaded_by("plan", "--help") == "[]"
    assert loaded_by("validate", "--help") == "[]"


def test_emulator_and_demo_help_need_no_web_stack() -> None:
    # The web stack is an extra: help must work without it, so it is imported only to serve.
    assert loaded_by("emulator", "serve", "--help") == "[]"
    assert loaded_by("demo", "--help") == "['reconciler.cli.demo']"


def test_help_lists_every_command_with_its_short_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:", 1)[1]
    for name in COMMANDS:
        line = next(row for row in listed.splitlines() if row.split()[:1] == [name])
        assert len(line.split()) > 1, f"{name} has no short help"
    assert "Show what apply would change" in listed


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["plna"])
    assert "No such command 'plna'" in result.output
    # The exit code a user sees (1, not click's 2): test_a_usage_error_exits_1_never_2.


def reconciler(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "--detailed-exitcode", "--fromat", "json"),  # a misspelt option
        ("drift", "--format", "yaml"),  # a bad value
        ("plna",),  # a misspelt command
        ("apply", "--parallelism", "0"),  # out of range
    ],
)
def test_a_usage_error_exits_1_never_2(args: tuple[str, ...]) -> None:
    # 2 means "changes" (plan --detailed-exitcode) or "drift" to a pipeline.
    done = reconciler(*args)
    assert done.returncode == 1, done.stderr
    assert "Error:" in done.stderr and "Traceback" not in done.stderr


def test_version_is_the_packages() -> None:
    done = reconciler("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"reconciler, version {__version__}"
