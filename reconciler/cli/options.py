"""Options that several commands share, defined once so that they read the same everywhere."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.ci import ci_run
from reconciler.constants import READ_PARALLELISM
from reconciler.durations import DurationError, format_duration, parse_duration
from reconciler.options import GlobalOptions
from reconciler.render.registry import FORMATS, RenderOptions

F = TypeVar("F", bound=Callable[..., Any])


def format_option(help_text: str) -> Callable[[F], F]:
    """``--format text|markdown|json`` (default text), passed as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="text",
        show_default=True,
        help=help_text,
    )


def parallelism_option(
    help_text: str = "Concurrent list requests.",
    default: int = READ_PARALLELISM,
    maximum: int | None = None,
) -> Callable[[F], F]:
    """``--parallelism N``: requests in flight at once (the client's pacing still applies)."""
    return click.option(
        "--parallelism",
        type=click.IntRange(min=1, max=maximum),
        default=default,
        show_default=True,
        help=help_text,
    )


def out_option(help_text: str) -> Callable[[F], F]:
    """``--out FILE`` (also spelled ``--output``), passed as ``out``: where to write a file."""
    return click.option(
        "--out",
        "--output",
        "out",
        type=click.Path(dir_okay=False, path_type=Path),
        help=help_text,
    )


def progress_to_stderr() -> Callable[[str], None] | None:
    """Progress messages on stderr, when it is a terminal (never in pipelines' logs)."""
    return _progress if sys.stderr.isatty() else None


def _progress(message: str) -> None:
    click.echo(message, err=True)


def render_options(options: GlobalOptions | None = None) -> RenderOptions:
    """Colour when stdout is a terminal (and allowed); the CI run for Markdown footers."""
    return RenderOptions(color=options.color() if options else False, ci=ci_run())


class DurationType(click.ParamType[float]):
    """A duration option (``30s``, ``5m``, ``1h30m``) read by :func:`reconciler.durations.
    parse_duration`, as seconds; a bad value is a usage error naming the option."""

    name = "duration"

    def __init__(self, minimum: float = 0.0) -> None:
        self.minimum = minimum

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(str(value))
            except DurationError as exc:
                self.fail(str(exc), param, ctx)
        if seconds < self.minimum:
            self.fail(
                f"{value!r} is shorter than the minimum of {format_duration(self.minimum)}",
                param,
                ctx,
            )
        return seconds
