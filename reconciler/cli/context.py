"""The global options carried on the click context, and the decorator that hands them over."""

from __future__ import annotations

import click

from reconciler.options import GlobalOptions

pass_options = click.make_pass_decorator(GlobalOptions, ensure=True)

__all__ = ["GlobalOptions", "pass_options"]
