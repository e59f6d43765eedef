"""The global options, defined once and accepted before or after the subcommand.

``reconciler --target prod plan`` and ``reconciler plan --target prod`` mean the same: the group
carries the options (shown in ``reconciler --help``) and every subcommand gets hidden copies when
it is loaded. Both write into the one :class:`~reconciler.options.GlobalOptions` on the click
context, so a value given after the subcommand wins over one given before it, and ``-v`` counts
add up (``reconciler -v plan -v`` is ``-vv``), as do ``--target`` names. A subcommand that
defines an option of the same name itself (``emulator serve --project-id``) keeps its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from reconciler import interrupts
from reconciler.logs import configure_logging
from reconciler.options import GlobalOptions

F = TypeVar("F", bound=Callable[..., Any])


class FiniteFloat(click.FloatRange):
    """A number option that refuses ``nan``, ``inf`` and ``-inf`` (which Python's ``float``
    reads, and which would slip past a range check or reach a timer) as a usage error naming
    the option, before any range check."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


EPILOG = (
    "Global options (--config, --target, --endpoint, --project-id, --region, --no-color, "
    "-v, --log-format, --timeout) are accepted here too; see `reconciler --help`."
)
_ATTACHED = "_reconciler_global_options"


@dataclass(frozen=True)
class _Global:
    decls: tuple[str, ...]
    attr: str
    kwargs: dict[str, Any] = field(default_factory=dict)


GLOBALS: tuple[_Global, ...] = (
    _Global(
        ("--config",),
        "config",
        {
            "type": click.Path(path_type=Path),
            "metavar": "FILE",
            "help": "Path to reconciler.yaml.",
        },
    ),
    _Global(
        ("--target",),
        "targets",
        {
            "metavar": "NAME",
            "multiple": True,
            "help": "Only this target of reconciler.yaml (repeatable; default: every target "
            "the manifests name).",
        },
    ),
    _Global(
        ("--endpoint",),
        "endpoint",
        {"metavar": "URL", "help": "MetaStudio endpoint URL (overrides the region's)."},
    ),
    _Global(
        ("--project-id",),
        "project_id",
        {"metavar": "ID", "help": "Project ID (overrides config and environment)."},
    ),
    _Global(("--region",), "region", {"help": "Region, e.g. cn-north-4."}),
    _Global(
        ("--no-color",),
        "no_color",
        {"is_flag": True, "help": "No colour in output (also: NO_COLOR)."},
    ),
    _Global(
        ("-v", "--verbose"),
        "verbose",
        {"count": True, "help": "More logging on stderr (-vv for debug)."},
    ),
    _Global(
        ("--log-format",),
        "log_format",
        {
            "type": click.Choice(["text", "json"]),
            "help": "Logs on stderr as text, or as one JSON object per line.  [default: text]",
        },
    ),
    _Global(
        ("--timeout",),
        "timeout",
        {
            "type": FiniteFloat(min=0, min_open=True, max=7 * 24 * 3600),
            "metavar": "SECONDS",
            "help": "Stop the whole run after this many seconds (exit 1).",
        },
    ),
)


def _store(spec: _Global) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A callback writing the option's value into the run's GlobalOptions when it was given."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if param.name is None or ctx.get_parameter_source(param.name) in (
            None,
            ParameterSource.DEFAULT,
            ParameterSource.DEFAULT_MAP,
        ):
            return
        options = ctx.ensure_object(GlobalOptions)
        if spec.attr == "verbose":
            options.verbose += int(value)
        elif spec.attr == "targets":
            options.add_targets(value)
        else:
            setattr(options, spec.attr, value)
        if spec.attr in ("verbose", "log_format"):
            configure_logging(options.verbose, options.log_format)
        if spec.attr == "timeout":
            interrupts.start_deadline(float(value))

    return callback


def _declaration(spec: _Global, *, hidden: bool) -> tuple[list[str], dict[str, Any]]:
    decls = [*spec.decls, f"global_{spec.attr}"]
    return decls, {"expose_value": False, "hidden": hidden, "callback": _store(spec), **spec.kwargs}


def group_options(func: F) -> F:
    """Decorate the ``reconciler`` group with the global options (listed in its help)."""
    for spec in reversed(GLOBALS):
        decls, kwargs = _declaration(spec, hidden=False)
        func = click.option(*decls, **kwargs)(func)
    return func


def attach(command: click.Command) -> click.Command:
    """Give ``command`` (and, for a group, its subcommands) hidden copies of the global options."""
    if getattr(command, _ATTACHED, False):
        return command
    taken = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for spec in GLOBALS:
        if not taken.intersection(spec.decls):
            decls, kwargs = _declaration(spec, hidden=True)
            command.params.append(click.Option(decls, **kwargs))
    if command.epilog is None and not command.hidden:
        command.epilog = EPILOG
    setattr(command, _ATTACHED, True)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            attach(sub)
    return command
