"""The ``reconciler`` group's command table: commands imported on first use, help without imports.

``reconciler --help``, shell completion of command names and ``reconciler completion`` must not
import the command modules (they pull in pydantic, httpx, deepdiff and the emulator's web stack,
most of a second on a cold start), so the listing uses the short help registered in
:mod:`reconciler.cli.commands` and a command module is imported only when that command runs or
its own help is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping

import click
from click.shell_completion import CompletionItem

from reconciler.cli.commands import CommandEntry
from reconciler.cli.global_options import attach


class LazyCommands(MutableMapping[str, click.Command]):
    """A command group's commands, each imported from its module when it is first looked up."""

    def __init__(self, entries: Mapping[str, CommandEntry]) -> None:
        self._entries = dict(entries)
        self._loaded: dict[str, click.Command] = {}

    def short_help(self, name: str) -> str:
        """The registered one-line help; a command added at run time gives its own."""
        entry = self._entries.get(name)
        if entry is not None and entry.short_help:
            return entry.short_help
        return self[name].get_short_help_str()

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if self._entries[name].remote:
                from reconciler.api import tls  # ssl and certifi only

                tls.prepare()
            module, _, attribute = self._entries[name].spec.partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._entries[name].spec} is not a click command")
            self._loaded[name] = attach(command)
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = attach(command)
        self._entries.setdefault(name, CommandEntry("", ""))

    def __delitem__(self, name: str) -> None:
        del self._entries[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class LazyGroup(click.Group):
    """A group over :class:`LazyCommands`: lists and completes names without importing them."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        from reconciler.cli.commands import COMMANDS

        self.lazy = LazyCommands(COMMANDS)
        self.commands = self.lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.lazy)  # the registry's order: the order a user meets them

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy.short_help(name)) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        if incomplete.startswith("-"):
            return super().shell_complete(ctx, incomplete)
        return [
            CompletionItem(name, help=self.lazy.short_help(name))
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
        ]
