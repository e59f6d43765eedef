"""The subcommands, by name; each lives in its own module under reconciler/cli/.

Entries are ``"module:attribute"`` strings rather than imports so that a run imports only the
module of the command it runs: ``reconciler plan`` does not load the emulator's web stack.
To register a command, add one entry here.
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    "validate": "reconciler.cli.validate:validate",
    "schema": "reconciler.cli.validate:schema",
    "plan": "reconciler.cli.plan:plan",
    "emulator": "reconciler.cli.emulator:emulator",
    "apply": "reconciler.cli.apply:apply",
    "drift": "reconciler.cli.drift:drift",
    "import": "reconciler.cli.importer:import_",
    "demo": "reconciler.cli.demo:demo",
}
