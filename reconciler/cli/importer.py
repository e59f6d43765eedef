"""``reconciler import``: write manifests from live assets.  See docs/import.md."""

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
from reconciler.engine.planner import DEFAULT_PARALLELISM
from reconciler.errors import ReconcilerError
from reconciler.importer import ImportResult, write_imports


class ImportUsageError(ReconcilerError):
    """Neither asset ids nor --all, or both."""


async def read_live(
    options: GlobalOptions, asset_ids: Sequence[str], *, parallelism: int
) -> tuple[list[dict[str, Any]], list[str], str]:
    """The raw live assets (all of the project when ``asset_ids`` is empty), the ids not found,
    and the target name."""
    config = load_config(config_path(options))
    target = resolve_target(options, config=config)
    credentials = credentials_from_env()
    async with MetaStudioClient(target, credentials, parallelism=parallelism) as client:
        if asset_ids:
            found = await client.fetch(list(asset_ids))
            assets = [found[a].raw for a in dict.fromkeys(asset_ids) if a in found]
            missing = [a for a in dict.fromkeys(asset_ids) if a not in found]
        else:
            assets = [a.raw for a in await client.list_all()]
            missing = []
    return assets, missing, target.name


@click.command("import")
@click.argument("asset_ids", nargs=-1, metavar="[ASSET_ID...]")
@click.option("--all", "import_all", is_flag=True, help="Import every asset of the project.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("manifests"),
    show_default=True,
    help="Where manifests live; existing ones (found by asset_id) are updated in place.",
)
@click.option(
    "--parallelism",
    type=click.IntRange(min=1),
    default=DEFAULT_PARALLELISM,
    show_default=True,
    help="Concurrent list requests.",
)
@pass_options
def import_(
    options: GlobalOptions,
    asset_ids: tuple[str, ...],
    import_all: bool,
    directory: Path,
    parallelism: int,
) -> None:
    """Write manifests from live state (writable fields only).

    Re-importing an asset that already has a manifest under --dir updates its spec in place,
    keeping comments and layout.  Exit 0 when every asset was imported, 1 otherwise.
    """
    if bool(asset_ids) == import_all:
        raise ImportUsageError("give asset ids to import, or --all (not both)")
    assets, missing, target_name = asyncio.run(
        read_live(options, asset_ids, parallelism=parallelism)
    )
    # Record the target only when one was chosen explicitly: a manifest without it follows the
    # default target, which is what a single-target setup wants.
    target = target_name if options.target else None
    result: ImportResult = write_imports(assets, directory, target=target)
    for line in result.lines():
        click.echo(line)
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for asset_id in missing:
        click.echo(f"Error: asset {asset_id} does not exist (MSS.10001001)", err=True)
    click.echo(result.summary())
    if missing:
        sys.exit(1)
