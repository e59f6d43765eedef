"""A fast start: ``--help``, ``--version`` and ``completion`` load no heavy library, and the
command list ``--help`` shows without importing commands matches what the commands say."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from reconciler.cli.commands import COMMANDS
from reconciler.cli.main import cli

HEAVY = ("pydantic", "httpx", "deepdiff", "starlette", "uvicorn", "ruamel")
# Command modules other than completion's own (they import the heavy libraries).
COMMAND_MODULES = sorted(
    {e.spec.partition(":")[0] for e in COMMANDS.values()} - {"reconciler.cli.completion"}
)
PROBE = """
import json, sys
watched = json.loads(sys.argv.pop(1))
sys.argv[0] = "reconciler"
from reconciler.cli.main import main
try:
    main()
except SystemExit:
    pass
sys.stdout.flush()
# A None entry marks a module as absent (httpx's own command line, reconciler/cli/__init__.py).
loaded = [
    m for m, module in sys.modules.items()
    if module is not None and (m.split(".")[0] in watched or m in watched)
]
print("\\nLOADED " + json.dumps(sorted(loaded)))
"""


def loaded_by(*args: str) -> tuple[str, list[str]]:
    watched = json.dumps([*HEAVY, *COMMAND_MODULES, "reconciler.manifest.schema"])
    run = subprocess.run(
        [sys.executable, "-c", PROBE, watched, *args], capture_output=True, text=True, timeout=60
    )
    out, _, loaded = run.stdout.rpartition("\nLOADED ")
    return out, json.loads(loaded)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["-h"],
        ["--version"],
        ["completion", "bash"],
        ["completion", "zsh"],
        ["completion", "fish"],
    ],
)
def test_quick_commands_import_no_heavy_library(args: list[str]) -> None:
    out, loaded = loaded_by(*args)
    assert out.strip(), "the command printed nothing"
    assert loaded == [], f"reconciler {' '.join(args)} imported {loaded}"


def test_help_lists_every_command_in_registry_order() -> None:
    out, _ = loaded_by("--help")
    listed = out.split("Commands:", 1)[1]
    names = [
        line.split()[0] for line in listed.splitlines() if line.startswith("  ") and line.split()
    ]
    assert names[: len(COMMANDS)] == list(COMMANDS)
    assert "plan        Show what apply would change." in listed
    assert "Examples:" in out and "reconciler show plan.json --format markdown" in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_registered_short_help_is_the_commands_own(name: str) -> None:
    command = cli.commands[name]
    assert isinstance(command, click.Command)
    assert command.get_short_help_str(limit=200) == COMMANDS[name].short_help


def test_version_is_printed() -> None:
    out, _ = loaded_by("--version")
    assert out.startswith("reconciler, version ")


def test_the_probe_sees_what_a_real_command_loads() -> None:
    _, loaded = loaded_by("plan", "--help")
    assert "httpx" in loaded and "reconciler.cli.plan" in loaded


def test_plan_starts_without_the_validation_models() -> None:
    """The models are imported by the first validation: a large plan's workers validate, and
    its own process sends its first request without spending 0.1 s building them."""
    _, loaded = loaded_by("plan", "--help")
    assert "pydantic" not in loaded and "reconciler.manifest.schema" not in loaded
