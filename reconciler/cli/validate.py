"""``reconciler validate`` and ``reconciler schema``."""

from __future__ import annotations

import click


@click.command()
@click.argument("paths", nargs=-1)
def validate(paths: tuple[str, ...]) -> None:
    """Check manifests offline (exit 0 valid, 1 not)."""
    raise click.ClickException("validate is not available yet")


@click.command()
def schema() -> None:
    """Print the JSON Schema of a manifest."""
    raise click.ClickException("schema is not available yet")
