"""``reconciler import``: write manifests from live assets.  See docs/import.md."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.cli.options import parallelism_option
from reconciler.errors import ReconcilerError
from reconciler.importer import ImportResult, write_imports
from reconciler.manager import read_live


class ImportUsageError(ReconcilerError):
    """Neither asset ids nor --all, or both."""


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
@parallelism_option()
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
