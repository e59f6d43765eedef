"""The ``reconciler`` command group: global options, logging, and the error boundary."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path

import click

from reconciler import __version__
from reconciler.errors import ReconcilerError
from reconciler.logs import configure_logging
from reconciler.options import GlobalOptions


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.option("--config", type=click.Path(path_type=Path), help="Path to reconciler.yaml.")
@click.option("--target", help="A target named in reconciler.yaml.")
@click.option("--endpoint", help="MetaStudio endpoint URL (overrides the region's).")
@click.option("--project-id", help="Project ID (overrides config and environment).")
@click.option("--region", help="Region, e.g. cn-north-4.")
@click.option("--no-color", is_flag=True, help="No colour in output (also: NO_COLOR).")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
def cli(
    ctx: click.Context,
    config: Path | None,
    target: str | None,
    endpoint: str | None,
    project_id: str | None,
    region: str | None,
    no_color: bool,
    verbose: int,
    log_format: str,
) -> None:
    """GitOps for Huawei Cloud MetaStudio digital assets."""
    ctx.obj = GlobalOptions(
        config=config,
        target=target,
        endpoint=endpoint,
        project_id=project_id,
        region=region,
        no_color=no_color,
        verbose=verbose,
        log_format=log_format,
    )
    configure_logging(verbose, log_format)


class LazyCommands(MutableMapping[str, click.Command]):
    """A command group's commands, each imported from its module when it is first looked up.

    click reaches the commands only through this mapping (``get`` to run one, iteration to list
    them), so a run imports the one module it needs; ``--help`` imports them all to show their
    short help.
    """

    def __init__(self, specs: Mapping[str, str]) -> None:
        self._specs = dict(specs)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            module, _, attribute = self._specs[name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._specs[name]} is not a click command")
            self._loaded[name] = command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command
        self._specs.setdefault(name, "")

    def __delitem__(self, name: str) -> None:
        del self._specs[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


def _register() -> None:
    from reconciler.cli.commands import COMMANDS

    cli.commands = LazyCommands(COMMANDS)


_register()


def main() -> None:
    """Entry point: expected failures print one clear message and exit non-zero."""
    try:
        # Without standalone mode click returns the code given to ctx.exit() instead of exiting.
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ReconcilerError as exc:
        logging.getLogger("reconciler").debug("failure", exc_info=True)
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    else:
        sys.exit(code if isinstance(code, int) else 0)
