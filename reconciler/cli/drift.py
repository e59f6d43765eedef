"""``reconciler drift``: compare every manifest with the live project, for schedules.

One bulk listing of the whole project gives both the live state of the managed assets and the
assets no manifest manages (for coverage).  Exit 0 in sync, 2 drift, 1 error.  See docs/drift.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler import interrupts
from reconciler.cli import retries
from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.cli.options import format_option, out_option, parallelism_option, render_options
from reconciler.constants import DEFAULT_PATHS
from reconciler.errors import ReconcilerError
from reconciler.escape import clean_text
from reconciler.files import write_atomic
from reconciler.render.drift_text import summary_line
from reconciler.render.registry import render
from reconciler.run import make_drift


@click.command()
@click.argument("paths", nargs=-1)
@format_option("Report format.")
@out_option("Write the report to this file instead of stdout.")
@click.option(
    "--include-unmanaged",
    is_flag=True,
    help="List the project's assets that no manifest manages (they are always counted).",
)
@parallelism_option()
@pass_options
def drift(
    options: GlobalOptions,
    paths: tuple[str, ...],
    fmt: str,
    out: Path | None,
    include_unmanaged: bool,
    parallelism: int,
) -> None:
    """Report what changed in MetaStudio outside git.

    PATHS default to ./manifests. Exit 0 in sync, 2 drift (drifted, missing or blocked assets),
    1 error.

    \b
    Examples:
      reconciler drift --include-unmanaged
      reconciler drift --format markdown --out drift.md
    """
    with retries.reported():
        report = interrupts.run(
            make_drift(
                options,
                paths or DEFAULT_PATHS,
                include_unmanaged=include_unmanaged,
                parallelism=parallelism,
            )
        )
    if out is not None:
        try:
            write_atomic(out, render("drift", fmt, report, render_options()))
        except OSError as exc:
            raise ReconcilerError(f"{out}: cannot write: {exc.strerror or exc}") from exc
        click.echo(summary_line(report), err=True)
        click.echo(f"Wrote the drift report to {clean_text(out)}.", err=True)
    else:
        click.echo(render("drift", fmt, report, render_options(options)), nl=False)
    for failed in report.failed:
        click.echo(f"Error: target {failed.target} could not be checked: {failed.error}", err=True)
    if report.exit_code:
        sys.exit(report.exit_code)
