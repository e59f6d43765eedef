"""The global options of a run (target selection, output, logging), independent of the CLI.

The command line fills them in; the api and run layers read them, so they live here rather
than in ``reconciler.cli``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class GlobalOptions:
    """``targets`` holds every ``--target`` given (a run covers those); ``target`` is the one
    target when exactly one was given, for the commands that work on one target only."""

    config: Path | None = None
    target: str | None = None
    endpoint: str | None = None
    project_id: str | None = None
    region: str | None = None
    no_color: bool = False
    verbose: int = 0
    log_format: str = "text"
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.target and not self.targets:
            self.targets = (self.target,)
        self.add_targets(())

    def add_targets(self, names: tuple[str, ...]) -> None:
        """Add ``--target`` names (each kept once, in order); ``target`` follows them."""
        self.targets = tuple(dict.fromkeys((*self.targets, *names)))
        self.target = self.targets[0] if len(self.targets) == 1 else None

    timeout: float | None = None  # --timeout: the whole run's deadline in seconds

    def color(self, stream: object = None) -> bool:
        """Colour only on a terminal, and never with --no-color or NO_COLOR set."""
        if self.no_color or os.environ.get("NO_COLOR"):
            return False
        target = stream if stream is not None else sys.stdout
        isatty = getattr(target, "isatty", None)
        return bool(isatty and isatty())
