"""Global options shared by every command, carried on the click context."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click


@dataclass
class GlobalOptions:
    config: Path | None = None
    target: str | None = None
    endpoint: str | None = None
    project_id: str | None = None
    region: str | None = None
    no_color: bool = False
    verbose: int = 0
    log_format: str = "text"

    def color(self, stream: object = None) -> bool:
        """Colour only on a terminal, and never with --no-color or NO_COLOR set."""
        if self.no_color or os.environ.get("NO_COLOR"):
            return False
        target = stream if stream is not None else sys.stdout
        isatty = getattr(target, "isatty", None)
        return bool(isatty and isatty())


pass_options = click.make_pass_decorator(GlobalOptions, ensure=True)
