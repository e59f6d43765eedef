"""The list of subcommands; each lives in its own module under reconciler/cli/."""

from __future__ import annotations

import click

from reconciler.cli.apply import apply
from reconciler.cli.demo import demo
from reconciler.cli.drift import drift
from reconciler.cli.emulator import emulator
from reconciler.cli.importer import import_
from reconciler.cli.plan import plan
from reconciler.cli.validate import schema, validate

ALL: list[click.Command] = [validate, schema, plan, emulator, apply, drift, import_, demo]
