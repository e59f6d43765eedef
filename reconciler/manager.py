"""The run layer: every command's run, from options to a result the CLI renders.

Each command module under ``reconciler/cli`` parses its options, calls one function here, hands
the result to a renderer and maps it to an exit code.  These functions print nothing: they
resolve the session (configuration file, target, credentials from the environment), load and
select the manifests, read and write live state through :mod:`reconciler.live` and the client,
and let the engine decide.  What the CLI must show while a run is under way (the plan before the
question, each asset's result as it finishes) it receives through :class:`ApplyHooks`.

| command | function | returns |
|---|---|---|
| plan | :func:`make_plan` | ``(Plan, PlanContext)`` |
| apply MANIFESTS | :func:`apply_manifests` | :class:`ApplyRun` |
| apply PLANFILE | :func:`apply_saved` | :class:`ApplyRun` |
| drift | :func:`make_drift` | ``DriftReport`` |
| import | :func:`import_assets` | :class:`ImportRun` |
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.api.auth import Credentials, credentials_from_env
from reconciler.api.client import MetaStudioClient
from reconciler.api.config import ReconcilerConfig, Target, config_path, load_config, resolve_target
from reconciler.constants import DEFAULT_PATHS, READ_PARALLELISM, WRITE_PARALLELISM
from reconciler.engine import planfile
from reconciler.engine.apply import ApplyResult, AssetResult
from reconciler.engine.drift import DriftReport, project_drift
from reconciler.engine.fingerprint import live_fingerprint
from reconciler.engine.plan import Action, Plan
from reconciler.engine.planfile import PlanContext
from reconciler.engine.planner import desired_from_loaded
from reconciler.engine.state import DEFAULT_STATE_PATH, WriteOnlyState
from reconciler.errors import ReconcilerError
from reconciler.importer import ImportResult, write_imports
from reconciler.live.apply import apply_plan, find_stale
from reconciler.live.plan import build_plan
from reconciler.manifest.loader import LoadedManifest, load_manifests
from reconciler.options import GlobalOptions
from reconciler.render.apply_text import stale_message, threshold_message

__all__ = [
    "DEFAULT_PATHS",
    "ApplyAborted",
    "ApplyHooks",
    "ApplyRefused",
    "ApplyRun",
    "Filters",
    "ImportRun",
    "Session",
    "apply_manifests",
    "apply_saved",
    "import_assets",
    "load_selected",
    "make_drift",
    "make_plan",
    "open_session",
    "read_live",
    "select",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Session:
    """Where a run talks to and as whom; credentials come from the environment only."""

    config: ReconcilerConfig
    target: Target
    credentials: Credentials

    def client(self, parallelism: int = READ_PARALLELISM) -> MetaStudioClient:
        return MetaStudioClient(self.target, self.credentials, parallelism=parallelism)

    def state(self) -> WriteOnlyState:
        """The write-only fingerprint store (``state:`` in reconciler.yaml, else the default)."""
        return WriteOnlyState(self.config.state or DEFAULT_STATE_PATH)


def open_session(options: GlobalOptions) -> Session:
    """Resolve configuration, target and credentials; each problem is a one-line error."""
    config = load_config(config_path(options))
    return Session(config, resolve_target(options, config=config), credentials_from_env())


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


def load_selected(
    session: Session, paths: Sequence[str], filters: Filters | None = None
) -> list[LoadedManifest]:
    """Every manifest under ``paths`` is validated (nothing is sent if one is invalid), then the
    run's selection is kept."""
    return select(
        load_manifests([Path(p) for p in paths]), filters or Filters(), session.target.name
    )


async def make_plan(
    options: GlobalOptions,
    paths: Sequence[str],
    filters: Filters | None = None,
    *,
    parallelism: int = READ_PARALLELISM,
    progress: Callable[[str], None] | None = None,
    out: Path | None = None,
) -> tuple[Plan, PlanContext]:
    """Plan the manifests under ``paths`` against the selected target; raises on setup errors.

    With ``out`` the plan is also saved there for ``reconciler apply PLANFILE``.
    """
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    session = open_session(options)
    plan, context = await _plan(session, paths, filters, parallelism, progress)
    if out is not None:
        planfile.write_plan(out, plan, context)
    return plan, context


async def _plan(
    session: Session,
    paths: Sequence[str],
    filters: Filters | None,
    parallelism: int,
    progress: Callable[[str], None] | None,
) -> tuple[Plan, PlanContext]:
    say = progress or (lambda _message: None)
    target = session.target
    say("Loading manifests...")
    loaded = load_selected(session, paths, filters)
    desired = [desired_from_loaded(item) for item in loaded]
    say(f"Reading {len(desired)} live assets from {target.endpoint}...")
    started = time.monotonic()
    with session.state() as state:
        async with session.client(parallelism) as client:
            plan = await build_plan(
                desired,
                client,
                state=state,
                target_name=target.name,
                project_id=target.project_id,
                endpoint=target.endpoint,
                parallelism=parallelism,
            )
    warning = threshold_message(plan)
    if warning:
        plan.warnings.append(warning)
    say(f"Planned {len(plan.assets)} assets in {time.monotonic() - started:.1f}s.")
    context = PlanContext(
        target=target.name, project_id=target.project_id, endpoint=target.endpoint
    )
    return plan, context


async def make_drift(
    options: GlobalOptions,
    paths: Sequence[str],
    *,
    include_unmanaged: bool = False,
    parallelism: int = READ_PARALLELISM,
) -> DriftReport:
    """Compare the manifests of the selected target with its whole project (one bulk listing
    gives both the managed assets' live state and the unmanaged ones, for coverage)."""
    session = open_session(options)
    desired = [desired_from_loaded(item) for item in load_selected(session, paths)]
    async with session.client(parallelism) as client:
        live: dict[str, dict[str, Any]] = {a.asset_id: a.raw for a in await client.list_all()}
        # An asset created under an X-App-UserId may only be visible with that header: look
        # those up before calling them missing.
        unseen = [d for d in desired if d.asset_id not in live and d.app_user_id]
        if unseen:
            found = await client.fetch(
                [d.asset_id for d in unseen], {d.asset_id: d.app_user_id for d in unseen}
            )
            live.update({asset_id: asset.raw for asset_id, asset in found.items()})
    target = session.target
    project = project_drift(
        desired,
        list(live.values()),
        target=target.name,
        project_id=target.project_id,
        endpoint=target.endpoint,
    )
    return DriftReport([project], include_unmanaged=include_unmanaged)


async def read_live(
    options: GlobalOptions, asset_ids: Sequence[str], *, parallelism: int = READ_PARALLELISM
) -> tuple[list[dict[str, Any]], list[str], str]:
    """The raw live assets (all of the project when ``asset_ids`` is empty), the ids not found,
    and the target name."""
    session = open_session(options)
    missing: list[str] = []
    async with session.client(parallelism) as client:
        if asset_ids:
            wanted = list(dict.fromkeys(asset_ids))
            found = await client.fetch(wanted)
            assets = [found[a].raw for a in wanted if a in found]
            missing = [a for a in wanted if a not in found]
        else:
            assets = [a.raw for a in await client.list_all()]
    return assets, missing, session.target.name


# --- import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRun:
    """What ``import`` wrote, and the requested ids the project does not have."""

    result: ImportResult
    missing: list[str]


def import_assets(
    options: GlobalOptions,
    asset_ids: Sequence[str],
    directory: Path,
    *,
    parallelism: int = READ_PARALLELISM,
) -> ImportRun:
    """Write or update manifests under ``directory`` from live assets (all when no ids)."""
    assets, missing, target_name = asyncio.run(
        read_live(options, asset_ids, parallelism=parallelism)
    )
    # Record the target only when one was chosen explicitly: a manifest without it follows the
    # default target, which is what a single-target setup wants.
    target = target_name if options.target else None
    return ImportRun(write_imports(assets, directory, target=target), missing)


# --- apply -------------------------------------------------------------------------------------


class ApplyRefused(ReconcilerError):
    """Apply will not send anything: stale plan, other target, threshold, no confirmation."""


class ApplyAborted(ReconcilerError):
    """A second interrupt abandoned the requests in flight; their outcome is unknown."""

    exit_code = 130


def _ignore(*_args: Any) -> None:
    return None


def _approve(_plan: Plan) -> bool:
    return True


@dataclass
class ApplyHooks:
    """What the CLI shows or asks while an apply runs; every hook defaults to silence.

    ``on_plan`` gets the plan before anything is decided (apply from manifests shows it),
    ``confirm`` is asked before sending (False cancels; it may raise :class:`ApplyRefused`),
    ``on_warning`` gets warnings such as a threshold crossed with ``force``, ``on_start`` the
    number of changes and the parallelism, ``on_result`` each asset's result as it finishes and
    ``on_interrupt`` the first Ctrl-C.
    """

    progress: Callable[[str], None] | None = None
    on_plan: Callable[[Plan], None] = _ignore
    confirm: Callable[[Plan], bool] = _approve
    on_warning: Callable[[str], None] = _ignore
    on_start: Callable[[int, int], None] = _ignore
    on_result: Callable[[AssetResult], None] = _ignore
    on_interrupt: Callable[[], None] = _ignore


@dataclass
class ApplyRun:
    """One apply: the plan it applied, and the result (None when nothing was sent)."""

    plan: Plan
    result: ApplyResult | None = None
    cancelled: bool = False  # the confirmation was declined
    saved: Path | None = None  # the plan file, when a saved plan was applied

    @property
    def exit_code(self) -> int:
        """The apply's exit code: its result's, 1 when declined, or the plan's errors."""
        if self.result is not None:
            return self.result.exit_code
        if self.cancelled:
            return 1
        failed = self.plan.by_action(Action.ERROR) + self.plan.by_action(Action.BLOCKED)
        return 1 if failed else 0


def _check_threshold(plan: Plan, force: bool, hooks: ApplyHooks) -> None:
    message = threshold_message(plan)
    if message and not force:
        raise ApplyRefused(f"{message}\nNothing was sent; re-run with --force to apply anyway.")
    if message:
        hooks.on_warning(f"{message} (--force given)")


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


def apply_manifests(
    options: GlobalOptions,
    paths: Sequence[str],
    *,
    parallelism: int = WRITE_PARALLELISM,
    force: bool = False,
    hooks: ApplyHooks | None = None,
) -> ApplyRun:
    """Plan the manifests, show the plan, check the threshold, confirm, then send."""
    hooks = hooks or ApplyHooks()
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    session = open_session(options)
    plan, _context = asyncio.run(_plan(session, paths, None, parallelism, hooks.progress))
    hooks.on_plan(plan)
    if not plan.by_action(Action.UPDATE):
        return ApplyRun(plan)
    _check_threshold(plan, force, hooks)
    if not hooks.confirm(plan):
        return ApplyRun(plan, cancelled=True)

    async def run(cancel: asyncio.Event) -> ApplyResult:
        async with session.client(parallelism) as client:
            return await _send(plan, client, state, parallelism, cancel, hooks)

    with session.state() as state:
        return ApplyRun(plan, _run_interruptible(run, hooks))


def apply_saved(
    options: GlobalOptions,
    path: Path,
    *,
    parallelism: int = WRITE_PARALLELISM,
    force: bool = False,
    hooks: ApplyHooks | None = None,
) -> ApplyRun:
    """Apply a saved plan file: same target, under the threshold, and not stale."""
    hooks = hooks or ApplyHooks()
    plan = planfile.read_plan(path).plan
    session = open_session(options)
    _check_same_target(plan, session.target, path)
    _check_threshold(plan, force, hooks)

    async def run(cancel: asyncio.Event) -> ApplyResult:
        async with session.client(parallelism) as client:
            stale = await find_stale(plan, client, live_fingerprint)
            if stale:
                raise ApplyRefused(stale_message(stale))
            return await _send(plan, client, state, parallelism, cancel, hooks)

    with session.state() as state:
        return ApplyRun(plan, _run_interruptible(run, hooks), saved=path)


async def _send(
    plan: Plan,
    client: MetaStudioClient,
    state: WriteOnlyState,
    parallelism: int,
    cancel: asyncio.Event,
    hooks: ApplyHooks,
) -> ApplyResult:
    todo = len(plan.by_action(Action.UPDATE))
    if todo:
        hooks.on_start(todo, parallelism)
    return await apply_plan(
        plan, client, state=state, parallelism=parallelism, cancel=cancel, on_result=hooks.on_result
    )


def _run_interruptible(
    work: Callable[[asyncio.Event], Awaitable[ApplyResult]], hooks: ApplyHooks
) -> ApplyResult:
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
                hooks.on_interrupt()
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
        raise ApplyAborted(
            "Apply aborted: requests in flight were abandoned and their outcome is unknown. "
            "Run `reconciler plan` to see the live state."
        ) from None
