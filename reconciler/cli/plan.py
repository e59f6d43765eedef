"""``reconciler plan``: load manifests, read live assets, and show (or save) what apply would do.

The plan body goes to stdout in the chosen format; logs, warnings and progress go to stderr, so
``reconciler plan --format json > plan.json`` stays machine-readable. The run is
:func:`reconciler.manager.make_plan`, which ``apply`` shares.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.cli.options import (
    format_option,
    out_option,
    parallelism_option,
    progress_to_stderr,
    render_options,
)
from reconciler.constants import DEFAULT_PATHS
from reconciler.engine.plan import Action, PlanSet
from reconciler.escape import clean_text
from reconciler.manager import Filters, make_plan
from reconciler.render.registry import render

log = logging.getLogger(__name__)

EXIT_CHANGES = 2  # with --detailed-exitcode


def parse_selectors(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``["team=marketing"]`` -> ``(("team", "marketing"),)``; a bad one is a usage error."""
    out = []
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="'--selector'")
        out.append((key.strip(), wanted.strip()))
    return tuple(out)


def exit_code(plan: PlanSet, detailed: bool) -> int:
    """1 when any asset or target cannot be planned; else 0, or 2 for changes with
    --detailed-exitcode (the codes of all targets aggregate)."""
    if plan.has_errors:
        return 1
    if detailed and plan.summary.has_changes:
        return EXIT_CHANGES
    return 0


@click.command()
@click.argument("paths", nargs=-1)
@format_option("Output format on stdout.")
@out_option("Also save the plan to this file, for `reconciler apply PLANFILE`.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing changes, 2 when something would change, 1 on error.",
)
@click.option("--asset", "asset_ids", multiple=True, metavar="ID", help="Only this asset id.")
@click.option(
    "--selector",
    "selectors",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only manifests whose metadata.labels match (several: all must match).",
)
@parallelism_option()
@pass_options
def plan(
    options: GlobalOptions,
    paths: tuple[str, ...],
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    asset_ids: tuple[str, ...],
    selectors: tuple[str, ...],
    parallelism: int,
) -> None:
    """Show what apply would change.

    PATHS (files or folders) default to ./manifests.

    \b
    Examples:
      reconciler plan --target prod
      reconciler plan manifests/ --out plan.json     # then: reconciler apply plan.json
      reconciler plan --format markdown > comment.md
      reconciler plan --detailed-exitcode            # exit 2 when something would change
      reconciler plan --selector team=marketing --asset 93769b5a-c8c6-4692-9c95-53933a1f0c93
    """
    filters = Filters(asset_ids=tuple(asset_ids), selectors=parse_selectors(selectors))
    result = asyncio.run(
        make_plan(
            options,
            paths or DEFAULT_PATHS,
            filters,
            parallelism=parallelism,
            progress=progress_to_stderr(),
            out=out,
        )
    )
    click.echo(render("plan", fmt, result, render_options(options)), nl=False)
    if fmt == "json":
        for warning in result.warnings:
            log.warning("%s", warning)
    if out is not None:
        shown = clean_text(out)
        click.echo(f"Saved the plan to {shown}; apply it with: reconciler apply {shown}", err=True)
    for failed in result.failed:
        click.echo(
            clean_text(f"Error: target {failed.target} could not be planned: {failed.error}"),
            err=True,
        )
    errors = result.by_action(Action.ERROR)
    if errors:
        noun = "asset" if len(errors) == 1 else "assets"
        click.echo(f"Error: {len(errors)} {noun} could not be planned (see the plan).", err=True)
    code = exit_code(result, detailed_exitcode)
    if code:
        sys.exit(code)
