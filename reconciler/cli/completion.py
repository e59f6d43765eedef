"""``reconciler completion bash|zsh|fish``: print the shell completion script.

The script is click's: at each Tab the shell runs ``reconciler`` with ``_RECONCILER_COMPLETE`` set,
and click answers with the matching commands, options and choices. Completing command names
imports no command module (see :mod:`reconciler.cli.group`), so Tab stays quick.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

PROG = "reconciler"
COMPLETE_VAR = "_RECONCILER_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script.

    \b
    bash:  eval "$(reconciler completion bash)"        # in ~/.bashrc
    zsh:   eval "$(reconciler completion zsh)"         # in ~/.zshrc
    fish:  reconciler completion fish > ~/.config/fish/completions/reconciler.fish
    """
    from reconciler.cli.main import cli

    shell_class = get_completion_class(shell)
    if shell_class is None:  # click ships all three; guard against a trimmed install
        raise click.UsageError(f"no completion support for {shell}")
    script = shell_class(cli, {}, PROG, COMPLETE_VAR).source()
    click.echo(script.rstrip("\n"))
