"""The list of subcommands; each lives in its own module under reconciler/cli/."""

from __future__ import annotations

import click

from reconciler.cli.validate import schema, validate

ALL: list[click.Command] = [validate, schema]
