"""``reconciler drift``: compare every manifest with the live project, for schedules.

One bulk listing of the whole project gives both the live state of the managed assets and the
assets no manifest manages (for coverage).  Exit 0 in sync, 2 drift, 1 error.  See docs/drift.md.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from reconciler.api.auth import credentials_from_env
from reconciler.api.client import MetaStudioClient
from reconciler.api.config import config_path, load_config, resolve_target
from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.cli.plan import DEFAULT_PATHS, Filters, select
from reconciler.engine.drift import DriftReport, project_drift
from reconciler.engine.planner import DEFAULT_PARALLELISM, desired_from_loaded
from reconciler.manifest.loader import load_manifests
from reconciler.manifest.writer import write_atomic
from reconciler.render import drift_json, drift_markdown, drift_text


async def make_drift(
    options: GlobalOptions,
    paths: Sequence[str],
    *,
    include_unmanaged: bool = False,
    parallelism: int = DEFAULT_PARALLELISM,
) -> DriftReport:
    """Load the manifests of the selected target and compare them with its whole project."""
    config = load_config(config_path(options))
    target = resolve_target(options, config=config)
    credentials = credentials_from_env()
    loaded = select(load_manifests([Path(p) for p in paths]), Filters(), target.name)
    desired = [desired_from_loaded(item) for item in loaded]
    async with MetaStudioClient(target, credentials, parallelism=parallelism) as client:
        listed = await client.list_all()
        live: dict[str, dict[str, Any]] = {a.asset_id: a.raw for a in listed}
        # An asset created under an X-App-UserId may only be visible with that header: look
        # those up before calling them missing.
        unseen = [d for d in desired if d.asset_id not in live and d.app_user_id]
        if unseen:
            found = await client.fetch(
                [d.asset_id for d in unseen], {d.asset_id: d.app_user_id for d in unseen}
            )
            live.update({asset_id: asset.raw for asset_id, asset in found.items()})
    project = project_drift(
        desired,
        list(live.values()),
        target=target.name,
        project_id=target.project_id,
        endpoint=target.endpoint,
    )
    return DriftReport([project], include_unmanaged=include_unmanaged)


def render(report: DriftReport, fmt: str, color: bool) -> str:
    if fmt == "json":
        return drift_json.render(report)
    if fmt == "markdown":
        return drift_markdown.render(report)
    return drift_text.render(report, color=color)


@click.command()
@click.argument("paths", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Report format.",
)
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
@click.option(
    "--parallelism",
    type=click.IntRange(min=1),
    default=DEFAULT_PARALLELISM,
    show_default=True,
    help="Concurrent list requests.",
)
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
