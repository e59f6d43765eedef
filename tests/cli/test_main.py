"""Sub-commands are imported only when they run; ``--help`` still lists every one of them."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

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


def test_the_emulator_command_still_loads_its_module() -> None:
    assert "reconciler.emulator" in loaded_by("emulator", "--help")


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
    assert result.exit_code == 2
    assert "No such command 'plna'" in result.output
