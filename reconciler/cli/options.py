"""Options that several commands share, defined once so that they read the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from reconciler.engine.planner import DEFAULT_PARALLELISM

F = TypeVar("F", bound=Callable[..., Any])


def format_option(help_text: str) -> Callable[[F], F]:
    """``--format text|markdown|json`` (default text), passed as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "markdown", "json"]),
        default="text",
        show_default=True,
        help=help_text,
    )


def parallelism_option(help_text: str = "Concurrent list requests.") -> Callable[[F], F]:
    """``--parallelism N``: requests in flight at once (the client's pacing still applies)."""
    return click.option(
        "--parallelism",
        type=click.IntRange(min=1),
        default=DEFAULT_PARALLELISM,
        show_default=True,
        help=help_text,
    )
