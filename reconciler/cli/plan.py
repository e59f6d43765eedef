"""``reconciler plan``: load manifests, read live assets, and show (or save) what apply would do.

The plan body goes to stdout in the chosen format; logs, warnings and progress go to stderr, so
``reconciler plan --format json > plan.json`` stays machine-readable. ``make_plan`` is the part
``apply`` shares: loading, filtering, target resolution and planning, without any output.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from reconciler.api.auth import credentials_from_env
from reconciler.api.client import MetaStudioClient
from reconciler.api.config import config_path, load_config, resolve_target
from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.engine import planfile
from reconciler.engine.plan import Action, Plan
from reconciler.engine.planfile import PlanContext
from reconciler.engine.planner import DEFAULT_PARALLELISM, build_plan, desired_from_loaded
from reconciler.engine.state import DEFAULT_STATE_PATH, WriteOnlyState
from reconciler.errors import ReconcilerError
from reconciler.manifest.loader import LoadedManifest, load_manifests
from reconciler.render import json as json_render
from reconciler.render import markdown, text

log = logging.getLogger(__name__)

DEFAULT_PATHS = ("manifests",)
EXIT_CHANGES = 2  # with --detailed-exitcode


@dataclass(frozen=True)
class Filters:
    """Which manifests a run covers: ``--asset`` ids (any of) and ``--selector`` labels (all of)."""

    asset_ids: tuple[str, ...] = ()
    selectors: tuple[tuple[str, str], ...] = ()

    def matches(self, loaded: LoadedManifest) -> bool:
        meta = loaded.manifest.metadata
        if self.asset_ids and meta.asset_id not in self.asset_ids:
            return False
        labels = meta.labels or {}
        return all(labels.get(key) == value for key, value in self.selectors)


def parse_selectors(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``["team=marketing"]`` -> ``(("team", "marketing"),)``; a bad one is a usage error."""
    out = []
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="'--selector'")
        out.append((key.strip(), wanted.strip()))
    return tuple(out)


def select(
    loaded: Sequence[LoadedManifest], filters: Filters, target_name: str
) -> list[LoadedManifest]:
    """The manifests for this run: those of the selected target that pass the filters."""
    chosen = []
    skipped = 0
    for item in loaded:
        meta = item.manifest.metadata
        if meta.target and meta.target != target_name:
            skipped += 1
            log.info(
                "skipping %s (%s:%s): its target is %r, this run's is %r",
                meta.asset_id,
                item.file,
                item.line,
                meta.target,
                target_name,
            )
            continue
        if filters.matches(item):
            chosen.append(item)
    if skipped and skipped == len(loaded):
        log.warning(
            "every manifest names another target than %r; pass --target to choose one",
            target_name,
        )
    declared = {item.manifest.metadata.asset_id for item in loaded}
    unknown = [a for a in filters.asset_ids if a not in declared]
    if unknown:
        raise ReconcilerError(f"--asset {', '.join(unknown)}: no manifest declares this asset")
    return chosen


async def make_plan(
    options: GlobalOptions,
    paths: Sequence[str],
    filters: Filters | None = None,
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    progress: Callable[[str], None] | None = None,
) -> tuple[Plan, PlanContext]:
    """Plan the manifests under ``paths`` against the selected target; raises on setup errors."""
    say = progress or (lambda _message: None)
    filters = filters or Filters()
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    config = load_config(config_path(options))
    target = resolve_target(options, config=config)
    credentials = credentials_from_env()
    say("Loading manifests...")
    loaded = select(load_manifests([Path(p) for p in paths]), filters, target.name)
    desired = [desired_from_loaded(item) for item in loaded]
    digests = {
        item.manifest.metadata.asset_id: planfile.digest(
            {
                "asset_id": item.manifest.metadata.asset_id,
                "app_user_id": item.manifest.metadata.app_user_id,
                "spec": item.desired,
            }
        )
        for item in loaded
    }
    say(f"Reading {len(desired)} live assets from {target.endpoint}...")
    started = time.monotonic()
    state = WriteOnlyState(config.state or DEFAULT_STATE_PATH)
    try:
        async with MetaStudioClient(target, credentials, parallelism=parallelism) as client:
            plan = await build_plan(
                desired,
                client,
                state=state,
                target_name=target.name,
                project_id=target.project_id,
                endpoint=target.endpoint,
                parallelism=parallelism,
            )
    finally:
        state.close()
    say(f"Planned {len(plan.assets)} assets in {time.monotonic() - started:.1f}s.")
    context = PlanContext(
        target=target.name,
        project_id=target.project_id,
        endpoint=target.endpoint,
        manifest_digests=digests,
    )
    return plan, context


def render(plan: Plan, fmt: str, color: bool) -> str:
    """The plan in the format asked for."""
    if fmt == "json":
        return json_render.render(plan)
    if fmt == "markdown":
        return markdown.render(plan)
    return text.render(plan, color=color)


def exit_code(plan: Plan, detailed: bool) -> int:
    """1 when any asset cannot be planned; else 0, or 2 for changes with --detailed-exitcode."""
    if plan.summary.errors:
        return 1
    if detailed and plan.summary.has_changes:
        return EXIT_CHANGES
    return 0


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@click.argument("paths", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Output format on stdout.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also save the plan to this file, for `reconciler apply PLANFILE`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing changes, 2 when something would change, 1 on error.",
)
@click.option("--asset", "asset_ids", multiple=True, metavar="ID", help="Only this asset id.")
@click.option(
    "--selector",
    "selectors",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only manifests whose metadata.labels match (several: all must match).",
)
@click.option(
    "--parallelism",
    type=click.IntRange(min=1),
    default=DEFAULT_PARALLELISM,
    show_default=True,
    help="Concurrent list requests.",
)
@pass_options
def plan(
    options: GlobalOptions,
    paths: tuple[str, ...],
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    asset_ids: tuple[str, ...],
    selectors: tuple[str, ...],
    parallelism: int,
) -> None:
    """Show what apply would change (PATHS default to ./manifests)."""
    filters = Filters(asset_ids=tuple(asset_ids), selectors=parse_selectors(selectors))
    progress = _progress if sys.stderr.isatty() else None
    result, context = asyncio.run(
        make_plan(
            options,
            paths or DEFAULT_PATHS,
            filters,
            parallelism=parallelism,
            progress=progress,
        )
    )
    click.echo(render(result, fmt, options.color()), nl=False)
    if fmt == "json":
        for warning in result.warnings:
            log.warning("%s", warning)
    if out is not None:
        planfile.write_plan(out, result, context)
        click.echo(f"Saved the plan to {out}; apply it with: reconciler apply {out}", err=True)
    errors = result.by_action(Action.ERROR)
    if errors:
        noun = "asset" if len(errors) == 1 else "assets"
        click.echo(f"Error: {len(errors)} {noun} could not be planned (see the plan).", err=True)
    code = exit_code(result, detailed_exitcode)
    if code:
        sys.exit(code)
