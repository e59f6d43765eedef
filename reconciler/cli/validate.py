"""``reconciler validate`` and ``reconciler schema``: offline checks of manifests."""

from __future__ import annotations

import click

from reconciler.api.config import config_path, load_config
from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.errors import ReconcilerError
from reconciler.escape import clean_text
from reconciler.manifest.loader import ManifestError, load_manifests, notes, summary
from reconciler.manifest.schema import manifest_json_schema_text
from reconciler.render.words import plural

DEFAULT_PATHS = ("manifests",)


class ValidationFailed(ReconcilerError):
    """Manifests have problems; they were printed one per line before this summary."""


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@pass_options
def validate(options: GlobalOptions, paths: tuple[str, ...]) -> None:
    """Check manifests offline (default path: manifests/).

    Also checks reconciler.yaml's ignore and policy rules (field paths, CEL syntax) when the
    file is there or given with --config. Exit 0 valid, 1 not; every problem is reported with
    file:line:column. With -v, also print notes about fields the service may refuse
    (system_properties).

    \b
    Example:
      reconciler validate manifests/ more/voice.yaml
    """
    config = load_config(config_path(options))  # rules checked offline: paths, CEL syntax
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
    if config.path is not None:
        ignore = len(config.ignore) + sum(len(r) for r in config.target_ignore.values())
        policies = len(config.policies) + sum(len(r) for r in config.target_policies.values())
        if ignore or policies:
            click.echo(
                f"{clean_text(str(config.path))}: {plural(ignore, 'ignore rule')} and "
                f"{plural(policies, 'policy rule')} valid."
            )


@click.command()
@click.option(
    "--settings",
    is_flag=True,
    help="Print the schema of reconciler.yaml (targets, ignore and policy rules) instead.",
)
def schema(settings: bool) -> None:
    """Print the JSON Schema of a manifest.

    With --settings, the schema of reconciler.yaml instead. For editors (completion and
    checks while typing): see docs/manifests.md and docs/configuration.md.

    \b
    Examples:
      reconciler schema > manifest.schema.json
      reconciler schema --settings > reconciler.schema.json
    """
    if settings:
        from reconciler.api.config_schema import config_json_schema_text

        click.echo(config_json_schema_text(), nl=False)
        return
    click.echo(manifest_json_schema_text(), nl=False)
