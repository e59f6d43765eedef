"""``reconciler apply``: plan (or read a saved plan), check, confirm, send, summarise.

The run is :func:`reconciler.run.apply_manifests` or :func:`reconciler.run.apply_saved`;
this module decides the mode from the arguments, asks the question, and prints what the run
reports through its hooks.  See docs/apply.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.cli import output, retries
from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.cli.options import (
    DurationType,
    filter_options,
    filters_from,
    max_change_percent_option,
    parallelism_option,
    render_options,
)
from reconciler.cli.plan import changed_since_option
from reconciler.cli.progress import ProgressLine, progress_for
from reconciler.constants import DEFAULT_PATHS, MANIFEST_SUFFIXES, WRITE_PARALLELISM
from reconciler.engine.apply import AssetResult, PlanStale
from reconciler.engine.guardrails import PolicyViolated
from reconciler.engine.plan import Action, PlanSet
from reconciler.engine.safety import ThresholdCrossed
from reconciler.escape import clean_lines, clean_text
from reconciler.files import write_atomic
from reconciler.interrupts import DeadlineExceeded, Stopped
from reconciler.render import apply_json, apply_text
from reconciler.render.registry import render
from reconciler.render.words import plural
from reconciler.run import (
    ApplyAborted,
    ApplyHooks,
    ApplyRefused,
    ApplyRun,
    Filters,
    apply_manifests,
    apply_saved,
)

PROMPT = """
Do you want to perform these actions?
  reconciler will send {changes} described above to MetaStudio:
{where}
  Only 'yes' will be accepted to approve.

  Enter a value: """
NO_TERMINAL = (
    "apply needs confirmation, but stdin is not a terminal; nothing was sent. "
    "Re-run with --auto-approve, or save a plan with `reconciler plan --out PLANFILE`, "
    "review it, and run `reconciler apply PLANFILE`."
)
PROMPT_INTERRUPTED = "\nInterrupted at the prompt: nothing was sent."
INTERRUPTED = (
    "\n{cause}: starting nothing new, waiting for requests in flight "
    "({again} again to abandon them)."
)

__all__ = ["ApplyRefused", "apply"]


@click.command()
@click.argument("args", nargs=-1, metavar="[PLANFILE | PATHS...]")
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@parallelism_option(
    "At most this many requests in flight, reads and PUTs together.", WRITE_PARALLELISM, maximum=100
)
@click.option("--force", is_flag=True, help="Apply even above the safety threshold.")
@click.option(
    "--lock-timeout",
    type=DurationType(),
    default="0s",
    show_default=True,
    metavar="DURATION",
    help="Wait up to this long (30s, 5m) for another apply of the same project to finish; "
    "by default a held lock fails at once.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write the result as JSON to FILE: each asset's outcome and the summary's counts.",
)
@click.option(
    "--allow-policy",
    "allow_policies",
    multiple=True,
    metavar="NAME",
    help="Apply changes that policy rule NAME refuses (repeatable); recorded in the summary "
    "and the --report JSON.",
)
@max_change_percent_option
@filter_options
@changed_since_option
@pass_options
def apply(
    options: GlobalOptions,
    args: tuple[str, ...],
    auto_approve: bool,
    parallelism: int,
    force: bool,
    lock_timeout: float,
    max_change_percent: float | None,
    asset_ids: tuple[str, ...],
    selectors: tuple[str, ...],
    report_path: Path | None,
    changed_since: str | None = None,
    allow_policies: tuple[str, ...] = (),
) -> None:
    """Make live assets match the manifests, or apply a saved plan.

    Exit 0 all applied (also a change whose answer was lost but that reading back shows
    landed), 1 any failure, unknown outcome, change not sent, refusal or change since plan,
    130 interrupted (143 by SIGTERM).

    \b
    Examples:
      reconciler apply                               # plan ./manifests, show it, ask
      reconciler apply plan.json                     # exactly what `plan --out` saved
      reconciler apply --auto-approve --target prod
      reconciler apply --lock-timeout 5m             # wait for another apply to finish
      reconciler apply --asset 93769b5a-c8c6-4692-9c95-53933a1f0c93   # only this asset
      reconciler apply --selector team=marketing    # only manifests labelled team: marketing
      reconciler apply --changed-since HEAD~1        # only what the last commit changed
    """
    progress = progress_for(options)
    hooks = _hooks(options, auto_approve, progress)
    plan_file = _plan_file_argument(args)
    filters = filters_from(asset_ids, selectors)
    if plan_file is not None and filters:
        raise click.UsageError("--asset and --selector narrow a plan, not a saved plan file")
    if plan_file is not None and changed_since is not None:
        raise click.UsageError(
            "--changed-since narrows a plan, not a saved plan file (give it to `plan --out`)"
        )
    try:
        with retries.reported():
            run = _run(
                options,
                args,
                plan_file,
                filters,
                hooks,
                parallelism,
                force,
                lock_timeout,
                max_change_percent,
                allow_policies,
                changed_since=changed_since,
            )
    except ApplyRefused as exc:
        if isinstance(exc.reason, PlanStale) and exc.reason.already_applied:
            click.echo(apply_text.already_applied(exc.reason))  # a re-run of a done job: exit 0
            sys.exit(0)
        if exc.reason is not None:
            exc.message = _refusal(exc)
        raise
    except ApplyAborted as exc:
        click.echo(clean_lines(exc), err=True)
        sys.exit(exc.exit_code)
    finally:
        if progress:
            progress.clear()
    code = _finish(run)
    if report_path is not None and run.result is not None:
        try:
            write_atomic(
                report_path, apply_json.render(run.result, run.results, allowed=run.allowed)
            )
        except OSError as exc:
            output.error(f"--report {report_path}: cannot write the apply result: {exc.strerror}")
            code = code or 1
    sys.exit(code)


def _run(
    options: GlobalOptions,
    args: tuple[str, ...],
    plan_file: Path | None,
    filters: Filters,
    hooks: ApplyHooks,
    parallelism: int,
    force: bool,
    lock_timeout: float,
    max_change_percent: float | None,
    allow_policies: tuple[str, ...] = (),
    *,
    changed_since: str | None = None,
) -> ApplyRun:
    if plan_file is not None:
        return apply_saved(
            options,
            plan_file,
            parallelism=parallelism,
            force=force,
            hooks=hooks,
            lock_timeout=lock_timeout,
            max_change_percent=max_change_percent,
            allow_policies=allow_policies,
        )
    return apply_manifests(
        options,
        list(args) or list(DEFAULT_PATHS),
        parallelism=parallelism,
        force=force,
        hooks=hooks,
        lock_timeout=lock_timeout,
        filters=filters,
        max_change_percent=max_change_percent,
        allow_policies=allow_policies,
        changed_since=changed_since,
    )


def _refusal(exc: ApplyRefused) -> str:
    """The words of a refusal the run gave as data."""
    if isinstance(exc.reason, PlanStale):
        return apply_text.stale_refusal(exc.reason)
    if isinstance(exc.reason, PolicyViolated):
        return apply_text.policy_refusal(exc.reason)
    assert exc.reason is not None
    return apply_text.threshold_refusal(exc.reason)


def _plan_file_argument(args: Sequence[str]) -> Path | None:
    """A single existing file that is not a manifest is a saved plan."""
    if len(args) != 1:
        return None
    path = Path(args[0])
    if path.is_file() and path.suffix.lower() not in MANIFEST_SUFFIXES:
        return path
    return None


def prompt(plans: PlanSet) -> str:
    """The question, naming where the changes go: a wrong target is caught before ``yes``."""
    going = [p for p in plans.plans if p.by_action(Action.UPDATE)]
    if len(going) == 1:
        plan = going[0]
        where = (
            f"    target:   {clean_text(plan.target or 'default')}\n"
            f"    project:  {clean_text(plan.project_id or '?')}\n"
            f"    endpoint: {clean_text(plan.endpoint or '?')}"
        )
    else:
        width = max(len(clean_text(p.target or "default")) for p in going)
        where = "\n".join(
            f"    target {clean_text(p.target or 'default'):<{width}}  "
            f"{plural(len(p.by_action(Action.UPDATE)), 'change')} to project "
            f"{clean_text(p.project_id or '?')} at {clean_text(p.endpoint or '?')}"
            for p in going
        )
    return PROMPT.format(changes=plural(len(plans.by_action(Action.UPDATE)), "change"), where=where)


def _hooks(options: GlobalOptions, auto_approve: bool, progress: ProgressLine | None) -> ApplyHooks:
    done = 0
    todo = 0

    def show_plan(plan: PlanSet) -> None:
        if progress:
            progress.clear()
        click.echo(
            render("plan", "text", apply_text.with_warnings(plan), render_options(options)),
            nl=False,
        )

    def confirm(plans: PlanSet) -> bool:
        if not auto_approve:
            if not sys.stdin.isatty():
                raise ApplyRefused(NO_TERMINAL)
            try:
                click.echo(prompt(plans), nl=False, err=True)
                answer = sys.stdin.readline()
            except KeyboardInterrupt:  # Ctrl-C instead of an answer: exit 130, nothing sent
                raise Stopped(PROMPT_INTERRUPTED) from None
            if answer.strip() != "yes":
                click.echo("\nApply cancelled.", err=True)
                return False
        click.echo()
        return True

    def start(count: int, parallelism: int) -> None:
        nonlocal todo
        todo = count
        if progress:
            progress.message(
                f"Applying {plural(count, 'change')}, up to {parallelism} at a time..."
            )
            progress.count("applied", 0, todo)

    def result(item: AssetResult) -> None:
        nonlocal done
        if progress:
            progress.clear()
        click.echo(apply_text.result_line(item))
        done += 1
        if progress and todo:
            progress.count("applied", done, todo)

    def forced(reason: ThresholdCrossed) -> None:
        for line in apply_text.threshold_forced(reason):
            output.warn(clean_lines(line))

    def interrupted(stop: Stopped) -> None:
        if progress:
            progress.clear()
        _say_interrupted(stop)

    return ApplyHooks(
        progress=progress.message if progress else None,
        on_count=progress.count if progress else None,
        on_plan=show_plan,
        confirm=confirm,
        on_forced=forced,
        on_start=start,
        on_result=result,
        on_interrupt=interrupted,
        on_lock_wait=lambda holder, timeout: output_line(
            progress, clean_lines(apply_text.lock_wait_line(holder, timeout))
        ),
    )


def output_line(progress: ProgressLine | None, text: str) -> None:
    """A line on stderr that does not land inside the progress line."""
    if progress:
        progress.message(text)
    else:
        click.echo(text, err=True)


def _say_interrupted(stop: Stopped) -> None:
    if isinstance(stop, DeadlineExceeded):
        cause, again = f"{stop.cause} reached", "a signal"
    elif stop.cause == "Ctrl-C":
        cause, again = "Interrupt received", "Ctrl-C"
    else:
        cause, again = f"{stop.cause} received", "a second signal"
    click.echo(INTERRUPTED.format(cause=cause, again=again), err=True)


def _finish(run: ApplyRun) -> int:
    """Print the closing summary and return the exit code; when nothing could be sent because
    every planned row is an error, say so (the plan above shows why)."""
    if run.result is not None:
        if len(run.results) > 1:
            for name, result in run.results.items():
                click.echo(f"{name}: {apply_text.summary(result)}")
        click.echo(apply_text.summary(run.result))
        for line in apply_text.allowed_lines(run.allowed):
            click.echo(line)
    elif not run.cancelled:
        unplanned = apply_text.nothing_to_send(run.plan)
        if unplanned is not None:
            error, closing = unplanned
            output.error(error)
            click.echo(closing)
    return run.exit_code
