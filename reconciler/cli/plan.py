"""``reconciler plan``: load manifests, read live assets, and show (or save) what apply would do.

The plan body goes to stdout in the chosen format; logs, warnings and progress go to stderr, so
``reconciler plan --format json > plan.json`` stays machine-readable. The run is
:func:`reconciler.run.make_plan`, which ``apply`` shares.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path

import click

from reconciler import interrupts
from reconciler.cli import output, retries
from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.cli.options import (
    filter_options,
    filters_from,
    format_option,
    max_change_percent_option,
    out_option,
    parallelism_option,
    parse_selectors,
    render_options,
)
from reconciler.cli.progress import progress_for
from reconciler.constants import DEFAULT_PATHS
from reconciler.engine.plan import Action, PlanSet
from reconciler.escape import clean_text
from reconciler.render.apply_text import with_warnings
from reconciler.render.registry import render_chunks
from reconciler.render.words import plural
from reconciler.run import make_plan, write_plan

log = logging.getLogger(__name__)

__all__ = ["changed_since_option", "exit_code", "parse_selectors", "plan"]

EXIT_CHANGES = 2  # with --detailed-exitcode

changed_since_option = click.option(
    "--changed-since",
    "changed_since",
    metavar="REF",
    default=None,
    help=(
        "Plan only the manifest documents that differ between git revision REF and the "
        "working tree, reading those assets by id (a pull request's merge base, the commit "
        "before a push). Removed documents are listed as no longer managed; the safety "
        "threshold still counts every managed asset."
    ),
)


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
@filter_options
@changed_since_option
@max_change_percent_option
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
    changed_since: str | None,
    max_change_percent: float | None,
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
      reconciler plan --changed-since origin/main    # only what this branch changed
      reconciler plan --selector team=marketing --asset 93769b5a-c8c6-4692-9c95-53933a1f0c93
    """
    progress = progress_for(options)
    try:
        with retries.reported():
            result = interrupts.run(
                make_plan(
                    options,
                    paths or DEFAULT_PATHS,
                    filters_from(asset_ids, selectors),
                    parallelism=parallelism,
                    progress=progress.message if progress else None,
                    counter=progress.count if progress else None,
                    max_change_percent=max_change_percent,
                    changed_since=changed_since,
                )
            )
    finally:
        if progress:
            progress.clear()
    with_warnings(result)
    if out is not None:
        write_plan(out, result)
    # In pieces: the JSON of a 100,000-asset plan is never one string in memory.
    _echo_pieces(render_chunks("plan", fmt, result, render_options(options)))
    if fmt == "json":
        for warning in result.warnings:
            log.warning("%s", warning)
    if out is not None:
        shown = clean_text(out)
        click.echo(f"Saved the plan to {shown}; apply it with: reconciler apply {shown}", err=True)
    for failed in result.failed:
        output.error(clean_text(f"target {failed.target} could not be planned: {failed.error}"))
    errors = result.by_action(Action.ERROR)
    if errors:
        output.error(f"{plural(len(errors), 'asset')} could not be planned (see the plan).")
    code = exit_code(result, detailed_exitcode)
    if code:
        sys.exit(code)


def _echo_pieces(pieces: Iterable[str], batch: int = 1 << 16) -> None:
    """Print a rendered document piece by piece, about 64 KB at a time (``click.echo`` flushes
    on every call, and a long plan is made of many small pieces)."""
    held: list[str] = []
    size = 0
    for piece in pieces:
        held.append(piece)
        size += len(piece)
        if size >= batch:
            click.echo("".join(held), nl=False)
            held, size = [], 0
    if held:
        click.echo("".join(held), nl=False)
