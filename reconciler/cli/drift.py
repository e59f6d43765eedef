"""``reconciler drift``: compare every manifest with the live project, for schedules.

One bulk listing of the whole project gives both the live state of the managed assets and the
assets no manifest manages (for coverage).  Exit 0 in sync, 2 drift, 1 error.  See docs/drift.md.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.cli.options import format_option, parallelism_option
from reconciler.engine.drift import DriftReport
from reconciler.manager import DEFAULT_PATHS, make_drift
from reconciler.manifest.writer import write_atomic
from reconciler.render import drift_json, drift_markdown, drift_text


def render(report: DriftReport, fmt: str, color: bool) -> str:
    if fmt == "json":
        return drift_json.render(report)
    if fmt == "markdown":
        return drift_markdown.render(report)
    return drift_text.render(report, color=color)


@click.command()
@click.argument("paths", nargs=-1)
@format_option("Report format.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file instead of stdout.",
)
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
    output: Path | None,
    include_unmanaged: bool,
    parallelism: int,
) -> None:
    """Report what changed in MetaStudio outside git (PATHS default to ./manifests).

    Exit 0 in sync, 2 drift (drifted, missing or blocked assets), 1 error.
    """
    report = asyncio.run(
        make_drift(
            options,
            paths or DEFAULT_PATHS,
            include_unmanaged=include_unmanaged,
            parallelism=parallelism,
        )
    )
    if output is not None:
        write_atomic(output, render(report, fmt, color=False))
        click.echo(drift_text.summary_line(report), err=True)
        click.echo(f"Wrote the drift report to {output}.", err=True)
    else:
        click.echo(render(report, fmt, options.color()), nl=False)
    if report.exit_code:
        sys.exit(report.exit_code)
