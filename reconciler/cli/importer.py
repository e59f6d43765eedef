"""``reconciler import``: write manifests from live assets.  See docs/import.md."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli import retries
from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.cli.options import parallelism_option
from reconciler.constants import DEFAULT_PATHS
from reconciler.errors import ReconcilerError
from reconciler.render import import_text
from reconciler.run import import_assets


class ImportUsageError(ReconcilerError):
    """Neither asset ids nor --all, or both."""


@click.command("import")
@click.argument("asset_ids", nargs=-1, metavar="[ASSET_ID...]")
@click.option("--all", "import_all", is_flag=True, help="Import every asset of the project.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(DEFAULT_PATHS[0]),
    show_default=True,
    help="Where manifests live; existing ones (found by asset_id) are updated in place.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; print what would be created or changed and exit 2 if anything would.",
)
@parallelism_option()
@pass_options
def import_(
    options: GlobalOptions,
    asset_ids: tuple[str, ...],
    import_all: bool,
    directory: Path,
    check: bool,
    parallelism: int,
) -> None:
    """Write manifests from live state.

    Only writable fields are written; assets in a state that does not allow updates (BLOCK,
    FAILED, ...) are left out with a note. Re-importing an asset that already has a manifest under
    --dir updates its spec in place, keeping comments and layout, and prints every value it
    changes.  Exit 0 when every asset was imported, 1 otherwise; with --check nothing is
    written, and the exit is 0 when nothing would change, 2 when something would, 1 on errors.

    \b
    Examples:
      reconciler import 93769b5a-c8c6-4692-9c95-53933a1f0c93 --dir manifests/
      reconciler import --all
      reconciler import --all --check
    """
    if bool(asset_ids) == import_all:
        raise ImportUsageError("give asset ids to import, or --all (not both)")
    with retries.reported():
        run = import_assets(options, asset_ids, directory, parallelism=parallelism, check=check)
    for line in import_text.file_lines(run.result):
        click.echo(line)
    for warning in run.result.warnings:
        click.echo(import_text.warning_line(warning), err=True)
    for asset_id in run.missing:
        click.echo(import_text.missing_line(asset_id), err=True)
    for refused in run.result.refused:
        click.echo(import_text.refused_line(refused), err=True)
    for skipped in run.result.skipped:
        click.echo(import_text.skipped_line(skipped), err=True)
    click.echo(import_text.summary(run.result))
    # --all leaves such assets out by design; an asset named on the command line was asked for.
    if run.missing or run.result.refused or (asset_ids and run.result.skipped):
        sys.exit(1)
    if check and run.result.changes:
        sys.exit(2)
