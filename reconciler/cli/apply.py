"""``reconciler apply``: plan (or read a saved plan), check, confirm, send, summarise.

The run is :func:`reconciler.manager.apply_manifests` or :func:`reconciler.manager.apply_saved`;
this module decides the mode from the arguments, asks the question, and prints what the run
reports through its hooks.  See docs/apply.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.cli.options import parallelism_option, progress_to_stderr
from reconciler.constants import DEFAULT_PATHS, MANIFEST_SUFFIXES, WRITE_PARALLELISM
from reconciler.durations import DurationError, parse_duration
from reconciler.engine.apply import AssetResult
from reconciler.engine.plan import PlanSet
from reconciler.escape import clean_lines
from reconciler.interrupts import DeadlineExceeded, Stopped
from reconciler.manager import (
    ApplyAborted,
    ApplyHooks,
    ApplyRefused,
    ApplyRun,
    apply_manifests,
    apply_saved,
)
from reconciler.render import apply_text
from reconciler.render.registry import RenderOptions, render

PROMPT = (
    "\nDo you want to perform these actions?\n"
    "  reconciler will send the changes described above to MetaStudio.\n"
    "  Only 'yes' will be accepted to approve.\n\n"
    "  Enter a value: "
)
NO_TERMINAL = (
    "apply needs confirmation, but stdin is not a terminal; nothing was sent. "
    "Re-run with --auto-approve, or save a plan with `reconciler plan --out PLANFILE`, "
    "review it, and run `reconciler apply PLANFILE`."
)
INTERRUPTED = (
    "\n{cause}: starting nothing new, waiting for requests in flight "
    "({again} again to abandon them)."
)

__all__ = ["ApplyRefused", "apply"]


@click.command()
@click.argument("args", nargs=-1, metavar="[PLANFILE | PATHS...]")
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@parallelism_option("At most this many requests in flight.", WRITE_PARALLELISM, maximum=100)
@click.option("--force", is_flag=True, help="Apply even above the safety threshold.")
@click.option(
    "--lock-timeout",
    default="0s",
    show_default=True,
    metavar="DURATION",
    help="Wait up to this long (30s, 5m) for another apply of the same project to finish; "
    "by default a held lock fails at once.",
)
@pass_options
def apply(
    options: GlobalOptions,
    args: tuple[str, ...],
    auto_approve: bool,
    parallelism: int,
    force: bool,
    lock_timeout: str,
) -> None:
    """Make live assets match the manifests, or apply a saved plan.

    Exit 0 all applied, 1 any failure, refusal or change since plan, 130 interrupted.

    \b
    Examples:
      reconciler apply                               # plan ./manifests, show it, ask
      reconciler apply plan.json                     # exactly what `plan --out` saved
      reconciler apply --auto-approve --target prod
      reconciler apply --lock-timeout 5m             # wait for another apply to finish
    """
    try:
        wait = parse_duration(lock_timeout)
    except DurationError as exc:
        raise ApplyRefused(f"--lock-timeout: {exc}") from None
    hooks = _hooks(options, auto_approve)
    plan_file = _plan_file_argument(args)
    try:
        if plan_file is not None:
            run = apply_saved(
                options,
                plan_file,
                parallelism=parallelism,
                force=force,
                hooks=hooks,
                lock_timeout=wait,
            )
        else:
            run = apply_manifests(
                options,
                list(args) or list(DEFAULT_PATHS),
                parallelism=parallelism,
                force=force,
                hooks=hooks,
                lock_timeout=wait,
            )
    except ApplyAborted as exc:
        click.echo(clean_lines(exc), err=True)
        sys.exit(exc.exit_code)
    sys.exit(_finish(run))


def _plan_file_argument(args: Sequence[str]) -> Path | None:
    """A single existing file that is not a manifest is a saved plan."""
    if len(args) != 1:
        return None
    path = Path(args[0])
    if path.is_file() and path.suffix.lower() not in MANIFEST_SUFFIXES:
        return path
    return None


def _hooks(options: GlobalOptions, auto_approve: bool) -> ApplyHooks:
    def show_plan(plan: PlanSet) -> None:
        click.echo(render("plan", "text", plan, RenderOptions(color=options.color())), nl=False)

    def confirm(_plan: PlanSet) -> bool:
        if not auto_approve:
            if not sys.stdin.isatty():
                raise ApplyRefused(NO_TERMINAL)
            click.echo(PROMPT, nl=False, err=True)
            if sys.stdin.readline().strip() != "yes":
                click.echo("\nApply cancelled.", err=True)
                return False
        click.echo()
        return True

    def start(todo: int, parallelism: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"Applying {todo} change(s), up to {parallelism} at a time...", err=True)

    def result(item: AssetResult) -> None:
        click.echo(apply_text.result_line(item))

    return ApplyHooks(
        progress=progress_to_stderr(),
        on_plan=show_plan,
        confirm=confirm,
        on_warning=lambda message: click.echo(f"Warning: {clean_lines(message)}", err=True),
        on_start=start,
        on_result=result,
        on_interrupt=_say_interrupted,
        on_lock_wait=lambda holder, timeout: click.echo(
            clean_lines(apply_text.lock_wait_line(holder, timeout)), err=True
        ),
    )


def _say_interrupted(stop: Stopped) -> None:
    if isinstance(stop, DeadlineExceeded):
        cause, again = f"{stop.cause} reached", "a signal"
    elif stop.cause == "Ctrl-C":
        cause, again = "Interrupt received", "Ctrl-C"
    else:
        cause, again = f"{stop.cause} received", "a second signal"
    click.echo(INTERRUPTED.format(cause=cause, again=again), err=True)


def _finish(run: ApplyRun) -> int:
    """Print the closing summary (when anything was sent) and return the exit code."""
    if run.result is not None:
        if len(run.results) > 1:
            for name, result in run.results.items():
                click.echo(f"{name}: {apply_text.summary(result)}")
        click.echo(apply_text.summary(run.result))
    return run.exit_code
