"""The subcommands, by name; each lives in its own module under reconciler/cli/.

Entries are ``"module:attribute"`` strings rather than imports so that a run imports only the
module of the command it runs: ``reconciler plan`` does not load the emulator's web stack, and
``reconciler --help`` (which lists every command with the short help given here) loads none of
them. A test checks that each short help here matches its command's docstring.
To register a command, add one entry here.
"""

from __future__ import annotations

from typing import NamedTuple


class CommandEntry(NamedTuple):
    spec: str  # "module:attribute" of the click command
    short_help: str  # shown by ``reconciler --help`` without importing the module
    # It talks to the service: its TLS context is built while its modules import (api/tls.py).
    remote: bool = False


COMMANDS: dict[str, CommandEntry] = {
    "validate": CommandEntry(
        "reconciler.cli.validate:validate", "Check manifests offline (default path: manifests/)."
    ),
    "schema": CommandEntry(
        "reconciler.cli.validate:schema", "Print the JSON Schema of a manifest."
    ),
    "plan": CommandEntry("reconciler.cli.plan:plan", "Show what apply would change.", remote=True),
    "apply": CommandEntry(
        "reconciler.cli.apply:apply",
        "Make live assets match the manifests, or apply a saved plan.",
        remote=True,
    ),
    "show": CommandEntry("reconciler.cli.show:show", "Print a saved plan file."),
    "drift": CommandEntry(
        "reconciler.cli.drift:drift", "Report what changed in MetaStudio outside git.", remote=True
    ),
    "import": CommandEntry(
        "reconciler.cli.importer:import_", "Write manifests from live state.", remote=True
    ),
    "emulator": CommandEntry(
        "reconciler.cli.emulator:emulator", "A local MetaStudio digital-asset service."
    ),
    "demo": CommandEntry(
        "reconciler.cli.demo:demo", "Plan, apply, plan, drift against the bundled emulator."
    ),
    "completion": CommandEntry(
        "reconciler.cli.completion:completion", "Print the shell completion script."
    ),
    "state": CommandEntry("reconciler.cli.state:state", "Look after the state: locks, migration."),
    "watch": CommandEntry(
        "reconciler.cli.watch:watch",
        "Watch for drift continuously: history, metrics, self-heal.",
        remote=True,
    ),
}
