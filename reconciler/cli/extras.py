"""Optional parts of the install: what to do when a command needs one that is missing.

A plain ``pip install metastudio-reconciler`` leaves out the emulator's web stack; the commands
that run the emulator check for it before importing anything from ``reconciler.emulator`` and
stop with the one command that installs it into the environment this ``reconciler`` runs from.
"""

from __future__ import annotations

import importlib
import shlex
import sys
from pathlib import Path

from reconciler import DISTRIBUTION, __version__
from reconciler.errors import ReconcilerError

EMULATOR_MODULES = ("starlette", "uvicorn")


class MissingExtra(ReconcilerError):
    """A command needs an extra that is not installed; the message says how to install it."""


def install_command(extra: str) -> str:
    """The command that adds ``extra`` to this installation, at the installed version."""
    requirement = shlex.quote(f"{DISTRIBUTION}[{extra}]=={__version__}")
    prefix = Path(sys.prefix)
    if (prefix / "pipx_metadata.json").is_file():  # a pipx-managed venv: pipx reinstalls it
        return f"pipx install --force {requirement}"
    return f"{shlex.quote(sys.executable)} -m pip install {requirement}"


def require_emulator(command: str) -> None:
    """Raise :class:`MissingExtra` unless the emulator's web stack can be imported."""
    missing = []
    for module in EMULATOR_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingExtra(
            f"'reconciler {command}' needs the emulator extra, which is not installed "
            f"(missing: {', '.join(missing)}). Install it with:\n"
            f"  {install_command('emulator')}"
        )
