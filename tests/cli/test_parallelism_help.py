"""``--parallelism`` says in --help and in the docs the default each command really uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.constants import READ_PARALLELISM, WRITE_PARALLELISM

DOCS = Path(__file__).resolve().parents[2] / "docs"


def shown_default(command: str) -> int:
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    found = re.search(r"--parallelism .*?\[default: (\d+)", result.output, re.DOTALL)
    assert found, result.output
    return int(found.group(1))


@pytest.mark.parametrize(
    ("command", "default"),
    [
        ("plan", READ_PARALLELISM),
        ("drift", READ_PARALLELISM),
        ("import", READ_PARALLELISM),
        ("watch", READ_PARALLELISM),
        ("apply", WRITE_PARALLELISM),
    ],
)
def test_help_shows_the_default_the_command_uses(command: str, default: int) -> None:
    assert shown_default(command) == default


def test_the_configuration_guide_gives_both_defaults() -> None:
    text = " ".join((DOCS / "configuration.md").read_text(encoding="utf-8").split())
    assert f"`--parallelism N` (default {READ_PARALLELISM} for `plan`" in text
    assert f"{WRITE_PARALLELISM} for `apply`" in text
