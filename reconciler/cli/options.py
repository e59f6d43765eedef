"""Options that several commands share, defined once so that they read the same everywhere."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.ci import ci_run
from reconciler.cli.global_options import FiniteFloat
from reconciler.constants import READ_PARALLELISM
from reconciler.durations import DurationError, format_duration, parse_duration
from reconciler.options import GlobalOptions
from reconciler.render.registry import FORMATS, RenderOptions
from reconciler.run import Filters

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
    help_text: str = "At most this many read requests in flight.",
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


def filter_options(func: F) -> F:
    """``--asset ID...`` and ``--selector KEY=VALUE...``, passed as ``asset_ids``, ``selectors``
    (turn them into the run's selection with :func:`filters_from`)."""
    func = click.option(
        "--selector",
        "selectors",
        multiple=True,
        metavar="KEY=VALUE",
        help="Only manifests whose metadata.labels match (several: all must match).",
    )(func)
    return click.option(
        "--asset",
        "asset_ids",
        multiple=True,
        metavar="ID",
        help="Only this asset (repeatable), like terraform's -target.",
    )(func)


def parse_selectors(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``["team=marketing"]`` -> ``(("team", "marketing"),)``; a bad one is a usage error."""
    out = []
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="'--selector'")
        out.append((key.strip(), wanted.strip()))
    return tuple(out)


def filters_from(asset_ids: Sequence[str], selectors: Sequence[str]) -> Filters:
    return Filters(asset_ids=tuple(asset_ids), selectors=parse_selectors(selectors))


def max_change_percent_option(func: F) -> F:
    """``--max-change-percent PCT``: this run's safety threshold, passed as
    ``max_change_percent``."""
    return click.option(
        "--max-change-percent",
        type=FiniteFloat(0, 100),
        metavar="PCT",
        help="Safety threshold for this run: more than PCT% of the managed assets changing "
        "needs --force (default: safety.max_change_percent in reconciler.yaml, else 30).",
    )(func)


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
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite duration", param, ctx)
        if seconds < self.minimum:
            self.fail(
                f"{value!r} is shorter than the minimum of {format_duration(self.minimum)}",
                param,
                ctx,
            )
        return seconds
