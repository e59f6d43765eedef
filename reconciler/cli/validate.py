"""``reconciler validate`` and ``reconciler schema``: offline checks of manifests."""

from __future__ import annotations

import click

from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.errors import ReconcilerError
from reconciler.escape import clean_text
from reconciler.manifest.loader import ManifestError, load_manifests, notes, summary
from reconciler.manifest.schema import manifest_json_schema_text

DEFAULT_PATHS = ("manifests",)


class ValidationFailed(ReconcilerError):
    """Manifests have problems; they were printed one per line before this summary."""


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@pass_options
def validate(options: GlobalOptions, paths: tuple[str, ...]) -> None:
    """Check manifests offline (default path: manifests/).

    Exit 0 valid, 1 not; every problem is reported with file:line:column. With -v, also
    print notes about fields the service may refuse (system_properties).

    \b
    Example:
      reconciler validate manifests/ more/voice.yaml
    """
    try:
        loaded = load_manifests(paths or DEFAULT_PATHS)
    except ManifestError as exc:
        for problem in exc.problems:
            click.echo(clean_text(problem), err=True)
        raise ValidationFailed(summary(exc.problems)) from None
    if options.verbose:
        for item in loaded:
            for note in notes(item):
                click.echo(clean_text(note), err=True)
    noun = "manifest" if len(loaded) == 1 else "manifests"
    click.echo(f"{len(loaded)} {noun} valid.")


@click.command()
def schema() -> None:
    """Print the JSON Schema of a manifest.

    For editors (completion and checks while typing): see docs/manifests.md.

    \b
    Example:
      reconciler schema > manifest.schema.json
    """
    click.echo(manifest_json_schema_text(), nl=False)
