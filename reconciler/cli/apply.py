"""``reconciler apply``: plan (or read a saved plan), check, confirm, send, summarise.

The work happens in :mod:`reconciler.engine.apply`; this module decides the mode, asks the
question, wires Ctrl-C to the engine's cancel event and prints results. See docs/apply.md.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import click

from reconciler.api.client import MetaStudioClient
from reconciler.api.config import Target
from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.engine.apply import (
    DEFAULT_PARALLELISM,
    ApplyResult,
    AssetResult,
    apply_plan,
    find_stale,
    stale_message,
)
from reconciler.engine.fingerprint import live_fingerprint
from reconciler.engine.plan import Action, Plan
from reconciler.engine.planfile import read_plan
from reconciler.engine.safety import threshold_message
from reconciler.engine.state import WriteOnlyState
from reconciler.errors import ReconcilerError
from reconciler.manager import DEFAULT_PATHS, make_plan, open_session
from reconciler.render.text import render

MANIFEST_SUFFIXES = (".yaml", ".yml")
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


class ApplyRefused(ReconcilerError):
    """Apply will not send anything: stale plan, other target, threshold, no confirmation."""


@click.command()
@click.argument("args", nargs=-1, metavar="[PLANFILE | PATHS...]")
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option(
    "--parallelism",
    type=click.IntRange(1, 100),
    default=DEFAULT_PARALLELISM,
    show_default=True,
    help="At most this many requests in flight.",
)
@click.option("--force", is_flag=True, help="Apply even above the safety threshold.")
@pass_options
def apply(
    options: GlobalOptions,
    args: tuple[str, ...],
    auto_approve: bool,
    parallelism: int,
    force: bool,
) -> None:
    """Make live assets match the manifests, or apply a saved plan file.

    Exit 0 all applied, 1 any failure or refusal, 130 interrupted.
    """
    plan_file = _plan_file_argument(args)
    if plan_file is not None:
        code = _apply_saved(options, plan_file, parallelism=parallelism, force=force)
    else:
        code = _apply_manifests(
            options, list(args) or list(DEFAULT_PATHS), auto_approve, parallelism, force
        )
    sys.exit(code)


def _plan_file_argument(args: Sequence[str]) -> Path | None:
    """A single existing file that is not a manifest is a saved plan."""
    if len(args) != 1:
        return None
    path = Path(args[0])
    if path.is_file() and path.suffix.lower() not in MANIFEST_SUFFIXES:
        return path
    return None


def _check_threshold(plan: Plan, force: bool) -> None:
    message = threshold_message(plan)
    if message and not force:
        raise ApplyRefused(f"{message}\nNothing was sent; re-run with --force to apply anyway.")
    if message:
        click.echo(f"Warning: {message} (--force given)", err=True)


# --- saved plan ------------------------------------------------------------------------------


def _apply_saved(options: GlobalOptions, path: Path, *, parallelism: int, force: bool) -> int:
    saved = read_plan(path)
    plan = saved.plan
    session = open_session(options)
    _check_same_target(plan, session.target, path)
    _check_threshold(plan, force)
    state = session.state()

    async def run(cancel: asyncio.Event) -> ApplyResult:
        async with session.client(parallelism) as client:
            stale = await find_stale(plan, client, live_fingerprint)
            if stale:
                raise ApplyRefused(stale_message(stale))
            return await _run_apply(plan, client, state, parallelism, cancel)

    with state:
        return _finish(_run_interruptible(run))


def _check_same_target(plan: Plan, target: Target, path: Path) -> None:
    made = (plan.project_id, plan.endpoint.rstrip("/") if plan.endpoint else None)
    now = (target.project_id, target.endpoint.rstrip("/"))
    if made != now:
        raise ApplyRefused(
            f"{path} was made for project {plan.project_id} at {plan.endpoint} "
            f"(target {plan.target}), but this run resolves to project {target.project_id} "
            f"at {target.endpoint} (target {target.name}); nothing was sent. Pass the same "
            "--target/--project-id/--endpoint as when the plan was made."
        )


# --- from manifests ----------------------------------------------------------------------------


def _apply_manifests(
    options: GlobalOptions,
    paths: list[str],
    auto_approve: bool,
    parallelism: int,
    force: bool,
) -> int:
    progress = _progress if _stderr_is_terminal() else None
    plan, _context = asyncio.run(
        make_plan(options, paths, parallelism=parallelism, progress=progress)
    )
    click.echo(render(plan, options.color()), nl=False)
    if not plan.by_action(Action.UPDATE):
        errors = plan.by_action(Action.ERROR) + plan.by_action(Action.BLOCKED)
        return 1 if errors else 0
    _check_threshold(plan, force)
    if not auto_approve:
        _confirm()
    click.echo()
    session = open_session(options)
    state = session.state()

    async def run(cancel: asyncio.Event) -> ApplyResult:
        async with session.client(parallelism) as client:
            return await _run_apply(plan, client, state, parallelism, cancel)

    with state:
        return _finish(_run_interruptible(run))


def _confirm() -> None:
    if not sys.stdin.isatty():
        raise ApplyRefused(NO_TERMINAL)
    click.echo(PROMPT, nl=False, err=True)
    answer = sys.stdin.readline().strip()
    if answer != "yes":
        click.echo("\nApply cancelled.", err=True)
        sys.exit(1)


# --- running and reporting ---------------------------------------------------------------------


async def _run_apply(
    plan: Plan,
    client: MetaStudioClient,
    state: WriteOnlyState,
    parallelism: int,
    cancel: asyncio.Event,
) -> ApplyResult:
    todo = len(plan.by_action(Action.UPDATE))
    if _stderr_is_terminal() and todo:
        click.echo(f"Applying {todo} change(s), up to {parallelism} at a time...", err=True)

    def report(result: AssetResult) -> None:
        click.echo(result.line())

    return await apply_plan(
        plan, client, state=state, parallelism=parallelism, cancel=cancel, on_result=report
    )


def _run_interruptible(work: Callable[[asyncio.Event], Awaitable[ApplyResult]]) -> ApplyResult:
    """Run ``work(cancel)`` with SIGINT wired to the cancel event (a second one aborts)."""

    async def main() -> ApplyResult:
        cancel = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        presses = 0

        def on_sigint() -> None:
            nonlocal presses
            presses += 1
            if presses == 1:
                cancel.set()
                click.echo(
                    "\nInterrupt received: starting nothing new, waiting for requests in flight "
                    "(Ctrl-C again to abandon them).",
                    err=True,
                )
            elif task is not None:
                task.cancel()

        loop.add_signal_handler(signal.SIGINT, on_sigint)
        try:
            return await work(cancel)
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        click.echo(
            "Apply aborted: requests in flight were abandoned and their outcome is unknown. "
            "Run `reconciler plan` to see the live state.",
            err=True,
        )
        sys.exit(130)


def _finish(result: ApplyResult) -> int:
    click.echo(result.summary())
    return result.exit_code


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
