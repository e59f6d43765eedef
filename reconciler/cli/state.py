"""``reconciler state``: list and remove write locks, migrate a local state to PostgreSQL.

See docs/state.md.  The state is the one ``RECONCILER_STATE`` names, else ``state:`` of
reconciler.yaml, else ``.reconciler/state.sqlite``.
"""

from __future__ import annotations

import sys

import click

from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.errors import ReconcilerError
from reconciler.render import state_text
from reconciler.run.state_admin import find_lock, list_locks, migrate, remove_lock

NO_TERMINAL = (
    "state unlock needs confirmation, but stdin is not a terminal; nothing was removed. "
    "Re-run with --force."
)


@click.group()
def state() -> None:
    """Look after the state: locks, migration."""


@state.command()
@pass_options
def locks(options: GlobalOptions) -> None:
    """List the write locks of the configured state.

    \b
    Examples:
      reconciler state locks
      RECONCILER_STATE=postgresql://reconciler@db/reconciler reconciler state locks
    """
    listing = list_locks(options)
    click.echo(state_text.locks_table(listing.location, listing.entries), nl=False)


@state.command()
@click.argument("key", metavar="TARGET_ENDPOINT_OR_PROJECT")
@click.option("--force", is_flag=True, help="Remove without asking (needed without a terminal).")
@pass_options
def unlock(options: GlobalOptions, key: str, force: bool) -> None:
    """Remove a write lock, whoever holds it (like terraform force-unlock).

    \b
    Examples:
      reconciler state unlock prod                  # the lock of target prod's project
      reconciler state unlock 0a1b2c3d4e5f --force  # by project id, without asking
    """
    entry = find_lock(options, key)
    if not force:
        if not sys.stdin.isatty():
            raise ReconcilerError(NO_TERMINAL)
        click.echo(state_text.unlock_question(entry), nl=False, err=True)
        if sys.stdin.readline().strip() != "yes":
            click.echo("\nNothing was removed.", err=True)
            sys.exit(1)
    click.echo(state_text.unlocked_line(entry, remove_lock(options, entry)))


@state.command(name="migrate")
@click.option("--to", "destination", required=True, metavar="URL", help="The new state.")
@pass_options
def migrate_(options: GlobalOptions, destination: str) -> None:
    """Copy the write-only records and drift history into another state.

    Idempotent: running it again copies nothing twice.

    \b
    Examples:
      RECONCILER_DEST=postgresql://reconciler@db/reconciler
      reconciler state migrate --to "$RECONCILER_DEST"
    """
    done = migrate(options, destination)
    counts = (done.records, done.records_present, done.episodes, done.episodes_present)
    click.echo(state_text.migration_lines(done.source, done.destination, counts), nl=False)
