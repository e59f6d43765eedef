"""The run layer: every command's run, from options to a result the CLI renders.

Each command module under ``reconciler/cli`` parses its options, calls one function here, hands
the result to a renderer and maps it to an exit code.  These functions print nothing: they
load and select the manifests, group them by target (:func:`open_run`: a :class:`Run` of
:class:`TargetRun`, each with its own :class:`Session` of configuration, target and credentials
from the environment), read and write live state through :mod:`reconciler.live` and the client,
every target at once, and let the engine decide.  Each target goes through the same
single-target path (``_plan_one``, ``_drift_one``, ``apply_plan``); the run is a gather over
them.  What the CLI must show while a run is under way (the plan before the
question, each asset's result as it finishes) it receives through :class:`ApplyHooks`.

| command | function | returns |
|---|---|---|
| plan | :func:`make_plan` | ``PlanSet`` (one ``Plan`` per target) |
| apply MANIFESTS | :func:`apply_manifests` | :class:`ApplyRun` |
| apply PLANFILE | :func:`apply_saved` | :class:`ApplyRun` |
| drift | :func:`make_drift` | ``DriftReport`` |
| import | :func:`import_assets` | :class:`ImportRun` |
| watch (a cycle) | :func:`drift_run`, :func:`heal` | ``DriftReport``, :class:`HealRun` |
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from reconciler import interrupts
from reconciler.api.auth import Credentials, credentials_from_env
from reconciler.api.client import AnswerObserver, MetaStudioClient
from reconciler.api.config import ReconcilerConfig, Target, config_path, load_config, resolve_target
from reconciler.api.retries import RetryTally
from reconciler.constants import DEFAULT_PATHS, READ_PARALLELISM, WRITE_PARALLELISM
from reconciler.engine import planfile
from reconciler.engine.apply import ApplyResult, AssetResult, ReadCounts, StaleAsset, stale_records
from reconciler.engine.diff import record_text
from reconciler.engine.drift import DriftReport, ProjectDrift, project_drift
from reconciler.engine.fingerprint import live_fingerprint
from reconciler.engine.history import DriftHistory
from reconciler.engine.lock import HeldLock, LockHeld, LockHolder, ProjectLock
from reconciler.engine.plan import Action, Plan, PlanSet
from reconciler.engine.planner import desired_from_loaded
from reconciler.engine.safety import SafetyPolicy
from reconciler.engine.state import DEFAULT_STATE_PATH, WriteOnlyState
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.live.apply import apply_plan, find_stale
from reconciler.live.fetch import failure, usable
from reconciler.live.plan import PlanRun, build_plan
from reconciler.manifest.background import StreamedLoad
from reconciler.manifest.loader import Declared, LoadedManifest, load_manifests
from reconciler.options import GlobalOptions
from reconciler.render.apply_text import (
    THRESHOLD_REFUSAL,
    stale_message,
    targeted_message,
    threshold_message,
)
from reconciler.render.retry_text import retry_lines
from reconciler.render.words import plural
from reconciler.times import now_rfc3339

if TYPE_CHECKING:
    from reconciler.importer import ImportResult

__all__ = [
    "DEFAULT_PATHS",
    "ApplyAborted",
    "ApplyHooks",
    "ApplyRefused",
    "ApplyRun",
    "Filters",
    "HealRun",
    "ImportRun",
    "LockHeld",
    "Run",
    "Session",
    "TargetRun",
    "apply_manifests",
    "apply_saved",
    "drift_run",
    "heal",
    "import_assets",
    "make_drift",
    "make_plan",
    "manifest_digests",
    "open_run",
    "open_session",
    "project_lock",
    "read_live",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Session:
    """Where a run talks to and as whom; credentials come from the environment only."""

    config: ReconcilerConfig
    target: Target
    credentials: Credentials
    on_answer: AnswerObserver | None = None  # sees every answer from the service (metrics)
    retries: RetryTally = field(default_factory=RetryTally)  # shared by the session's clients

    def client(self, parallelism: int = READ_PARALLELISM) -> MetaStudioClient:
        return MetaStudioClient(
            self.target,
            self.credentials,
            parallelism=parallelism,
            on_answer=self.on_answer,
            tally=self.retries,
        )

    @property
    def state_path(self) -> Path:
        """The state file (``state:`` in reconciler.yaml, else the default)."""
        return Path(self.config.state or DEFAULT_STATE_PATH)

    def state(self) -> WriteOnlyState:
        """The write-only fingerprint store."""
        return WriteOnlyState(self.state_path)

    def history(self) -> DriftHistory:
        """The drift history (written by ``watch``, read by ``drift``)."""
        return DriftHistory(self.state_path)

    def lock(self) -> ProjectLock:
        """The write lock per (endpoint, project), kept in the same state file."""
        return ProjectLock(self.state_path)

    def safety(self, max_change_percent: float | None = None) -> SafetyPolicy:
        """The threshold: ``--max-change-percent``, else the target's or the file's ``safety:``,
        else the defaults."""
        settings = self.config.safety_settings(self.target.name)
        default = SafetyPolicy()
        return SafetyPolicy(
            max_change_percent=float(
                max_change_percent
                if max_change_percent is not None
                else settings.get("max_change_percent", default.max_change_percent)
            ),
            min_assets=int(settings.get("min_assets", default.min_assets)),
        )


def report_retries(sessions: Sequence[Session | None]) -> None:
    """At the end of a run, whatever its outcome: one warning per kind of retry, per target."""
    several = len(sessions) > 1
    for session in sessions:
        if session is None:
            continue
        for line in retry_lines(session.retries):
            log.warning(
                "%s",
                f"[{session.target.name}] {line}" if several else line,
                extra={
                    "target": session.target.name,
                    "retried": dict(session.retries.retried),
                    "throttled": session.retries.throttled,
                },
            )


# Progress of a counted stage: (what, done, total), e.g. ("reading live assets", 300, 1000).
StageCounter = Callable[[str, int, int], None]


def _open(
    options: GlobalOptions,
    config: ReconcilerConfig,
    name: str | None,
    on_answer: AnswerObserver | None = None,
) -> Session:
    target = resolve_target(options, name, config=config)
    credentials = credentials_from_env(prefix=target.credentials_env_prefix)
    return Session(config, target, credentials, on_answer)


def open_session(options: GlobalOptions) -> Session:
    """The session of a one-target command (import): each problem is a one-line error."""
    if len(options.targets) > 1:
        raise ConfigError("this command works on one target: pass a single --target")
    return _open(options, load_config(config_path(options)), None)


@dataclass(frozen=True)
class Filters:
    """Which manifests a run covers: ``--asset`` ids (any of) and ``--selector`` labels (all of)."""

    asset_ids: tuple[str, ...] = ()
    selectors: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.asset_ids or self.selectors)

    @property
    def flags(self) -> str:
        """The options that narrowed the run, as typed: ``--asset, --selector``."""
        return ", ".join(
            name
            for name, given in (("--asset", self.asset_ids), ("--selector", self.selectors))
            if given
        )

    def matches(self, loaded: LoadedManifest | Declared) -> bool:
        if self.asset_ids and loaded.asset_id not in self.asset_ids:
            return False
        labels = loaded.labels
        return all(labels.get(key) == value for key, value in self.selectors)


# --- targets of a run --------------------------------------------------------------------------


@dataclass
class TargetRun:
    """One target of a run: its manifests and its session (a tenant of its own: credentials,
    pacing and rate limits), or why the session could not be opened."""

    name: str | None  # the target's name in reconciler.yaml; None: flags and environment only
    manifests: list[LoadedManifest]
    session: Session | None = None
    error: ReconcilerError | None = None
    declared: int = 0  # the target's manifests before --asset / --selector

    @property
    def label(self) -> str:
        return self.session.target.name if self.session else (self.name or "default")

    @property
    def place(self) -> tuple[str | None, str | None]:
        """The project id and endpoint, when the session opened."""
        if self.session is None:
            return None, None
        return self.session.target.project_id, self.session.target.endpoint

    def opened(self) -> Session:
        """The session; raises the error that kept it from opening."""
        if self.session is None:
            raise self.error or ConfigError(f"target {self.label}: no session")
        return self.session


@dataclass
class Run:
    """Every target a run covers, each with its own session, and the run's configuration."""

    config: ReconcilerConfig
    targets: list[TargetRun] = field(default_factory=list)
    filters: Filters = field(default_factory=Filters)
    max_change_percent: float | None = None  # --max-change-percent, for every target

    @property
    def sessions(self) -> list[Session | None]:
        return [target.session for target in self.targets]

    def safety(self, plan: Plan) -> SafetyPolicy:
        """The threshold of the target ``plan`` was made for."""
        for target in self.targets:
            if target.session is not None and target.session.target.name == plan.target:
                return target.session.safety(self.max_change_percent)
        return SafetyPolicy(
            max_change_percent=self.max_change_percent
            if self.max_change_percent is not None
            else SafetyPolicy().max_change_percent
        )

    @property
    def several(self) -> bool:
        """More than one target: one target's failure is reported under it, not raised."""
        return len(self.targets) > 1

    def state(self) -> WriteOnlyState:
        return WriteOnlyState(self.config.state or DEFAULT_STATE_PATH)

    def history(self) -> DriftHistory:
        return DriftHistory(self.config.state or DEFAULT_STATE_PATH)


def _owner(
    loaded: LoadedManifest | Declared, config: ReconcilerConfig, options: GlobalOptions
) -> str | None:
    """A manifest's target: ``metadata.target``, else the configuration's implicit one, else
    the single ``--target`` given (a manifest without a target follows the chosen one)."""
    if loaded.target:
        if loaded.target not in config.targets:
            known = ", ".join(sorted(config.targets)) or "none defined"
            where = config.path or "reconciler.yaml (none found)"
            raise ConfigError(
                f"{loaded.file}:{loaded.line}: metadata.target: no target named "
                f"{loaded.target!r} in {where} (targets: {known})"
            )
        return loaded.target
    return config.implicit_target or options.target


def open_run(
    options: GlobalOptions,
    paths: Sequence[str],
    filters: Filters | None = None,
    max_change_percent: float | None = None,
    *,
    loaded: Sequence[LoadedManifest] | None = None,
    on_answer: AnswerObserver | None = None,
) -> Run:
    """Load and validate every manifest (nothing is sent if one is invalid), group the selected
    ones by target, and open each target's session.

    Without ``--target`` the run covers every target the manifests name; ``--target`` (given
    one or more times) narrows it to those targets, each planned even when no manifest names it.
    ``loaded`` are manifests already loaded from ``paths`` (``watch`` reloads only changed
    files); ``on_answer`` sees every answer of every target's client.
    """
    filters = filters or Filters()
    config = load_config(config_path(options))
    if loaded is None:
        loaded = load_manifests([Path(p) for p in paths])
    groups: dict[str | None, list[LoadedManifest]] = {name: [] for name in options.targets}
    per_target: dict[str | None, int] = {}
    skipped = 0
    for item in loaded:
        owner = _owner(item, config, options)
        if options.targets and owner not in options.targets:
            skipped += 1
            continue
        per_target[owner] = per_target.get(owner, 0) + 1
        if filters.matches(item):
            groups.setdefault(owner, []).append(item)
    if skipped:
        chosen = ", ".join(options.targets)
        level = logging.WARNING if skipped == len(loaded) else logging.INFO
        log.log(level, "skipped %s of targets other than %s", plural(skipped, "manifest"), chosen)
    if not groups:
        groups[config.implicit_target] = []
    declared = {item.manifest.metadata.asset_id for item in loaded}
    unknown = [a for a in filters.asset_ids if a not in declared]
    if unknown:
        raise ReconcilerError(f"--asset {', '.join(unknown)}: no manifest declares this asset")
    order: list[str | None] = [*options.targets] or [None, *config.targets]
    names = sorted(groups, key=lambda n: order.index(n) if n in order else len(order))
    run = Run(
        config,
        [TargetRun(name, groups[name], declared=per_target.get(name, 0)) for name in names],
        filters=filters,
        max_change_percent=max_change_percent,
    )
    if run.several:
        given = [flag for flag, value in _single_target_flags(options) if value]
        if given:
            raise ConfigError(
                f"{', '.join(given)} applies to one target, but this run covers "
                f"{len(run.targets)} ({', '.join(t.label for t in run.targets)}); "
                "narrow it with --target"
            )
    for target in run.targets:
        try:
            target.session = _open(options, config, target.name, on_answer)
        except ConfigError as exc:
            if not run.several:
                raise
            target.error = exc
    return run


def _single_target_flags(options: GlobalOptions) -> list[tuple[str, str | None]]:
    return [
        ("--endpoint", options.endpoint),
        ("--project-id", options.project_id),
        ("--region", options.region),
    ]


def _prefixed(run: Run, target: TargetRun, message: str) -> str:
    return f"[{target.label}] {message}" if run.several else message


# --- plan --------------------------------------------------------------------------------------


async def make_plan(
    options: GlobalOptions,
    paths: Sequence[str],
    filters: Filters | None = None,
    *,
    parallelism: int = READ_PARALLELISM,
    progress: Callable[[str], None] | None = None,
    counter: StageCounter | None = None,
    out: Path | None = None,
    max_change_percent: float | None = None,
) -> PlanSet:
    """Plan the manifests under ``paths`` against every target of the run, concurrently.

    A target that cannot be planned (unreachable, credentials rejected) is reported in its own
    plan (``Plan.error``) when the run covers several; a one-target run raises, as a setup
    error.  With ``out`` the plan is also saved there for ``reconciler apply PLANFILE``.
    ``counter`` gets ``("reading live assets", done, total)`` over all targets as live state
    arrives.
    """
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    say = progress or (lambda _message: None)
    say("Loading manifests...")
    config = load_config(config_path(options))
    single = _single_target(options, config)
    narrowed = filters is not None and bool(filters)  # open_run says that targeting is in effect
    if single is not _SEVERAL and max_change_percent is None and counter is None and not narrowed:
        plans = await _plan_streamed(
            options, config, single, paths, filters or Filters(), parallelism, progress
        )
    else:
        run = open_run(options, paths, filters, max_change_percent)
        try:
            plans = await plan_run(run, parallelism=parallelism, progress=progress, counter=counter)
        finally:
            report_retries(run.sessions)
    if out is not None:
        planfile.write_plan(out, plans)
    return plans


_SEVERAL = "\0several"  # a run whose targets are known only once the manifests are loaded


def _single_target(options: GlobalOptions, config: ReconcilerConfig) -> str | None:
    """The one target of the run when it is known before any manifest is loaded (one
    ``--target``; or a configuration with at most one target, that every manifest must name
    or follow), else :data:`_SEVERAL`."""
    if len(options.targets) == 1:
        return options.targets[0]
    if options.targets:
        return _SEVERAL
    if not config.targets and config.default_target is None:
        return None  # flags and the environment only
    if len(config.targets) == 1 and config.implicit_target in config.targets:
        return config.implicit_target
    return _SEVERAL


async def _plan_streamed(
    options: GlobalOptions,
    config: ReconcilerConfig,
    name: str | None,
    paths: Sequence[str],
    filters: Filters,
    parallelism: int,
    progress: Callable[[str], None] | None,
) -> PlanSet:
    """A one-target plan that reads live state while the manifests load (docs/performance.md).

    The reads start as soon as discovery has counted the files; each chunk of valid manifests
    is handed over as it loads, and an asset is diffed once both halves are there.  The first
    invalid manifest cancels every read at once (no further request is sent, nothing can be
    written); the load goes on without the network so that every problem is reported together.
    The selection and its checks are those of :func:`open_run`.
    """
    say = progress or (lambda _message: None)
    session = _open(options, config, name)
    try:
        return await _plan_streamed_on(session, config, options, paths, filters, parallelism, say)
    finally:
        report_retries([session])


async def _plan_streamed_on(
    session: Session,
    config: ReconcilerConfig,
    options: GlobalOptions,
    paths: Sequence[str],
    filters: Filters,
    parallelism: int,
    say: Callable[[str], None],
) -> PlanSet:
    name = session.target.name if options.targets else _single_target(options, config)
    created_at = now_rfc3339()
    target = session.target
    started = time.monotonic()
    seen = skipped = 0
    declared: set[str] = set()
    with Run(config).state() as state:
        async with session.client(parallelism) as client:
            reads = PlanRun(
                client, state=state, project_id=target.project_id, parallelism=parallelism
            )
            try:
                async with StreamedLoad([Path(p) for p in paths]) as load:
                    say(f"Reading live assets from {target.endpoint} while loading manifests...")
                    reads.start(len(filters.asset_ids) if filters.asset_ids else load.files)
                    refused: ConfigError | None = None  # raised after the manifests' problems
                    async for chunk in load:
                        if (chunk.problems or refused) and not reads.cancelled:
                            await reads.cancel()
                        chosen = []
                        for item in chunk.manifests:
                            seen += 1
                            declared.add(item.asset_id)
                            try:
                                owner = _owner(item, config, options)
                            except ConfigError as exc:
                                refused = refused or exc
                                continue
                            if options.targets and owner not in options.targets:
                                skipped += 1
                            elif filters.matches(item):
                                chosen.append(item)
                        if refused is not None and not reads.cancelled:
                            await reads.cancel()
                        if not reads.cancelled:
                            reads.add([desired_from_loaded(item) for item in chosen])
                    load.raise_problems()
                    if refused is not None:
                        raise refused
                if skipped:
                    level = logging.WARNING if skipped == seen else logging.INFO
                    log.log(level, "skipped %d manifest(s) of targets other than %s", skipped, name)
                unknown = [a for a in filters.asset_ids if a not in declared]
                if unknown:
                    raise ReconcilerError(
                        f"--asset {', '.join(unknown)}: no manifest declares this asset"
                    )
                plan = await reads.finish(target_name=target.name, endpoint=target.endpoint)
            finally:
                await reads.cancel()
    warning = threshold_message(plan, session.safety(None))
    if warning:
        plan.warnings.append(warning)
    say(f"Planned {len(plan.assets)} assets in {time.monotonic() - started:.1f}s.")
    return PlanSet([plan], created_at=created_at)


async def plan_run(
    run: Run,
    *,
    parallelism: int = READ_PARALLELISM,
    progress: Callable[[str], None] | None = None,
    counter: StageCounter | None = None,
) -> PlanSet:
    """Plan every target of ``run`` at once: each has its own client, so its own pacing."""
    created_at = now_rfc3339()
    total = sum(len(t.manifests) for t in run.targets)
    done: dict[int, int] = {}

    def arrived(index: int) -> Callable[[int, int], None] | None:
        if counter is None:
            return None

        def update(count: int, _of: int) -> None:
            done[index] = count
            counter("reading live assets", sum(done.values()), total)

        return update

    with run.state() as state:
        plans = await asyncio.gather(
            *(
                _plan_target(run, t, state, parallelism, progress, arrived(i))
                for i, t in enumerate(run.targets)
            )
        )
    return PlanSet(list(plans), created_at=created_at)


async def _isolated(
    run: Run,
    target: TargetRun,
    work: Callable[[Session], Awaitable[T]],
    failed: Callable[[str, str | None, str | None], T],
) -> T:
    """``work`` on the target's session; in a run over several targets, a failure of this
    target becomes ``failed(message, project_id, endpoint)`` instead of ending the run."""
    try:
        return await work(target.opened())
    except ReconcilerError as exc:
        if not run.several:
            raise
        return failed(str(exc), *target.place)


async def _plan_target(
    run: Run,
    target: TargetRun,
    state: WriteOnlyState,
    parallelism: int,
    progress: Callable[[str], None] | None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Plan:
    def failed(error: str, project_id: str | None, endpoint: str | None) -> Plan:
        return Plan(
            [],
            target=target.label,
            project_id=project_id,
            endpoint=endpoint,
            created_at=now_rfc3339(),
            error=error,
            unplanned=len(target.manifests),
        )

    async def work(session: Session) -> Plan:
        plan = await _plan_one(
            session,
            target.manifests,
            state,
            parallelism,
            progress,
            run.several,
            on_progress=on_progress,
            policy=session.safety(run.max_change_percent),
        )
        if run.filters:
            selected = len(target.manifests)
            plan.warnings.insert(0, targeted_message(selected, target.declared, run.filters.flags))
        return plan

    return await _isolated(run, target, work, failed)


async def _plan_one(
    session: Session,
    loaded: Sequence[LoadedManifest],
    state: WriteOnlyState,
    parallelism: int,
    progress: Callable[[str], None] | None,
    several: bool = False,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    policy: SafetyPolicy | None = None,
) -> Plan:
    """One target's plan: the single-target path every run goes through, once per target."""
    target = session.target
    prefix = f"[{target.name}] " if several else ""
    say = progress or (lambda _message: None)
    desired = [desired_from_loaded(item) for item in loaded]
    say(f"{prefix}Reading {len(desired)} live assets from {target.endpoint}...")
    started = time.monotonic()
    async with session.client(parallelism) as client:
        plan = await build_plan(
            desired,
            client,
            state=state,
            target_name=target.name,
            project_id=target.project_id,
            endpoint=target.endpoint,
            parallelism=parallelism,
            on_progress=on_progress,
        )
    warning = threshold_message(plan, policy)
    if warning:
        plan.warnings.append(warning)
    say(f"{prefix}Planned {len(plan.assets)} assets in {time.monotonic() - started:.1f}s.")
    return plan


# --- drift -------------------------------------------------------------------------------------


async def make_drift(
    options: GlobalOptions,
    paths: Sequence[str],
    *,
    include_unmanaged: bool = False,
    parallelism: int = READ_PARALLELISM,
) -> DriftReport:
    """Compare each target's manifests with its whole project, every target at once (one bulk
    listing per project gives both the managed assets' live state and the unmanaged ones).
    Where the drift history (recorded by ``watch``, only read here) knows since when an asset
    differs, the report says so."""
    run = open_run(options, paths)
    try:
        report = await drift_run(run, parallelism=parallelism, include_unmanaged=include_unmanaged)
    finally:
        report_retries(run.sessions)
    with run.history() as history:
        for project in report.projects:
            if project.project_id and project.error is None:
                project.add_history(history.open_episodes(project.project_id))
    return report


async def drift_run(
    run: Run, *, parallelism: int = READ_PARALLELISM, include_unmanaged: bool = False
) -> DriftReport:
    """The drift of every target of ``run``, at once."""
    projects = await asyncio.gather(*(_drift_target(run, t, parallelism) for t in run.targets))
    return DriftReport(list(projects), include_unmanaged=include_unmanaged)


def manifest_digests(loaded: Sequence[LoadedManifest]) -> dict[str, str]:
    """Per asset, a digest of what its manifest declares (identity, X-App-UserId, spec): the
    drift history tells a manifest change from an out-of-band fix by it."""
    return {
        item.manifest.metadata.asset_id: planfile.digest(
            {
                "asset_id": item.manifest.metadata.asset_id,
                "app_user_id": item.manifest.metadata.app_user_id,
                "spec": item.desired,
            }
        )
        for item in loaded
    }


async def _drift_target(run: Run, target: TargetRun, parallelism: int) -> ProjectDrift:
    def failed(error: str, project_id: str | None, endpoint: str | None) -> ProjectDrift:
        return ProjectDrift(
            target=target.label,
            project_id=project_id,
            endpoint=endpoint,
            assets=[],
            unmanaged=[],
            total=0,
            managed=0,
            error=error,
            unchecked_manifests=len(target.manifests),
        )

    return await _isolated(
        run, target, lambda session: _drift_one(session, target.manifests, parallelism), failed
    )


async def _drift_one(
    session: Session, loaded: Sequence[LoadedManifest], parallelism: int
) -> ProjectDrift:
    desired = [desired_from_loaded(item) for item in loaded]
    failed: dict[str, ReconcilerError] = {}
    async with session.client(parallelism) as client:
        managed = {d.asset_id for d in desired}
        live: dict[str, dict[str, Any]] = {}
        for asset in await client.list_all():
            if asset.asset_id in managed:  # a managed asset holding NaN fails alone
                live.update(usable({asset.asset_id: asset}, failed))
            else:
                live[asset.asset_id] = asset.raw
        # An asset created under an X-App-UserId may only be visible with that header: look
        # those up before calling them missing.
        unseen = [
            d
            for d in desired
            if d.asset_id not in live and d.asset_id not in failed and d.app_user_id
        ]
        if unseen:
            found = await client.fetch(
                [d.asset_id for d in unseen], {d.asset_id: d.app_user_id for d in unseen}
            )
            live.update(usable(found, failed))
    target = session.target
    return project_drift(
        desired,
        list(live.values()),
        target=target.name,
        project_id=target.project_id,
        endpoint=target.endpoint,
        failed={asset_id: failure(error) for asset_id, error in failed.items()},
    )


async def read_live(
    options: GlobalOptions, asset_ids: Sequence[str], *, parallelism: int = READ_PARALLELISM
) -> tuple[list[dict[str, Any]], list[str], str]:
    """The raw live assets (all of the project when ``asset_ids`` is empty), the ids not found,
    and the target name."""
    session = open_session(options)
    missing: list[str] = []
    try:
        async with session.client(parallelism) as client:
            if asset_ids:
                wanted = list(dict.fromkeys(asset_ids))
                found = await client.fetch(wanted)
                assets = [found[a].raw for a in wanted if a in found]
                missing = [a for a in wanted if a not in found]
            else:
                assets = [a.raw for a in await client.list_all()]
    finally:
        report_retries([session])
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
    check: bool = False,
) -> ImportRun:
    """Write or update manifests under ``directory`` from live assets (all when no ids);
    with ``check`` nothing is written and the result says what would be."""
    assets, missing, target_name = interrupts.run(
        read_live(options, asset_ids, parallelism=parallelism)
    )
    # Record the target only when one was chosen explicitly: a manifest without it follows the
    # default target, which is what a single-target setup wants.
    target = target_name if options.target else None
    from reconciler.importer import write_imports  # only import needs it (start-up)

    return ImportRun(write_imports(assets, directory, target=target, check=check), missing)


# --- apply -------------------------------------------------------------------------------------


class ApplyRefused(ReconcilerError):
    """Apply will not send anything: stale plan, other target, threshold, no confirmation."""


class ApplyAborted(ReconcilerError):
    """A second interrupt abandoned the requests in flight; their outcome is unknown."""

    exit_code = 130


def _ignore(*_args: Any) -> None:
    return None


def _approve(_plan: PlanSet) -> bool:
    return True


@dataclass
class ApplyHooks:
    """What the CLI shows or asks while an apply runs; every hook defaults to silence.

    ``on_plan`` gets the plan (every target's) before anything is decided (apply from manifests
    shows it), ``confirm`` is asked before sending (False cancels; it may raise
    :class:`ApplyRefused`), ``on_warning`` gets warnings such as a threshold crossed with
    ``force``, ``on_start`` the number of changes and the parallelism, ``on_result`` each asset's
    result as it finishes (``AssetResult.target`` names its target when the run has several),
    ``on_interrupt`` the first stop (Ctrl-C, SIGTERM or the ``--timeout`` deadline) and
    ``on_lock_wait`` the holder of a project's write lock and the timeout, when apply starts
    waiting for it.
    """

    progress: Callable[[str], None] | None = None
    on_count: StageCounter | None = None  # ("reading live assets", done, total) while planning
    on_plan: Callable[[PlanSet], None] = _ignore
    confirm: Callable[[PlanSet], bool] = _approve
    on_warning: Callable[[str], None] = _ignore
    on_start: Callable[[int, int], None] = _ignore
    on_result: Callable[[AssetResult], None] = _ignore
    on_interrupt: Callable[[interrupts.Stopped], None] = _ignore
    on_lock_wait: Callable[[LockHolder, float], None] = _ignore


@dataclass
class ApplyRun:
    """One apply: the plan it applied, and the result (None when nothing was sent).

    ``result`` holds every target's asset results (in plan order, target after target);
    ``results`` the same per target name, for per-target summaries.
    """

    plan: PlanSet
    result: ApplyResult | None = None
    cancelled: bool = False  # the confirmation was declined
    saved: Path | None = None  # the plan file, when a saved plan was applied
    results: dict[str, ApplyResult] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """The apply's exit code: its result's, 1 when declined, or the plan's errors."""
        if self.result is not None:
            return self.result.exit_code
        if self.cancelled:
            return 1
        failed = self.plan.by_action(Action.ERROR) + self.plan.by_action(Action.BLOCKED)
        return 1 if failed or self.plan.failed else 0


def _check_threshold(
    plans: PlanSet,
    force: bool,
    hooks: ApplyHooks,
    policy: Callable[[Plan], SafetyPolicy],
    *,
    shown: bool,
) -> None:
    """The safety threshold, per target: each target's share of its own managed assets.

    When the plan was just shown, its warnings already gave the numbers, so they are not
    repeated: the threshold is said once."""
    several = len(plans.plans) > 1
    crossed = [(plan, m) for plan in plans.plans if (m := threshold_message(plan, policy(plan)))]
    messages = [f"target {plan.target}: {m}" if several else m for plan, m in crossed]
    if messages and not force:
        if not shown:
            raise ApplyRefused("\n".join(messages) + "\n" + THRESHOLD_REFUSAL)
        where = f"target {', '.join(str(p.target) for p, _ in crossed)}: " if several else ""
        raise ApplyRefused(where + THRESHOLD_REFUSAL)
    if not shown:
        for message in messages:
            hooks.on_warning(f"{message} (--force given)")


def _check_planned(plans: PlanSet) -> None:
    """Apply never starts while a target could not be planned: its state is unknown."""
    if plans.failed:
        lines = [f"  target {plan.target}: {plan.error}" for plan in plans.failed]
        raise ApplyRefused(
            "\n".join(
                [
                    f"{len(plans.failed)} target(s) could not be planned; nothing was sent "
                    "to any target.",
                    *lines,
                ]
            )
        )


def _check_same_target(plan: Plan, target: Target, path: Path) -> None:
    made = (plan.project_id, plan.endpoint.rstrip("/") if plan.endpoint else None)
    now = (target.project_id, target.endpoint.rstrip("/"))
    if plan.target is not None and target.name != plan.target:
        raise ApplyRefused(
            f"{path} was made for target {plan.target}, but this run's target is {target.name} "
            f"(project {target.project_id} at {target.endpoint}); nothing was sent. Pass "
            f"--target {plan.target}."
        )
    if made != now:
        raise ApplyRefused(
            f"{path} was made for project {plan.project_id} at {plan.endpoint} "
            f"(target {plan.target}), but this run resolves to project {target.project_id} "
            f"at {target.endpoint} (target {target.name}); nothing was sent. Pass the same "
            "--target/--project-id/--endpoint as when the plan was made."
        )


@contextlib.contextmanager
def project_lock(
    session: Session,
    *,
    timeout: float = 0.0,
    command: str = "apply",
    on_wait: Callable[[LockHolder, float], None] = _ignore,
) -> Iterator[HeldLock]:
    """Hold the write lock of the session's (endpoint, project) for a block of work.

    Every writer takes it before it plans what it will send (``apply``; ``watch --self-heal``
    with ``command="watch --self-heal"``).  Raises :class:`~reconciler.engine.lock.LockHeld`
    naming the holder when it stays taken past ``timeout`` seconds.
    """
    target = session.target
    with session.lock().hold(
        target.endpoint,
        target.project_id,
        command=command,
        timeout=timeout,
        on_wait=lambda holder: on_wait(holder, timeout),
    ) as held:
        yield held


@contextlib.contextmanager
def _locked(sessions: Sequence[Session], timeout: float, hooks: ApplyHooks) -> Iterator[None]:
    """Every distinct project of the run locked, in one order (two runs never wait on each
    other's second lock), for the whole apply: from planning to the last write."""
    places: dict[tuple[str, str], Session] = {}
    for session in sessions:
        places.setdefault((session.target.endpoint.rstrip("/"), session.target.project_id), session)
    with contextlib.ExitStack() as stack:
        for place in sorted(places):
            stack.enter_context(
                project_lock(places[place], timeout=timeout, on_wait=hooks.on_lock_wait)
            )
        yield


def apply_manifests(
    options: GlobalOptions,
    paths: Sequence[str],
    *,
    parallelism: int = WRITE_PARALLELISM,
    force: bool = False,
    hooks: ApplyHooks | None = None,
    lock_timeout: float = 0.0,
    filters: Filters | None = None,
    max_change_percent: float | None = None,
) -> ApplyRun:
    """Under each target's write lock: plan every target's manifests (those ``filters``
    select), show the plan, check each target's threshold, confirm, then send to every target
    at once (each write right after a fresh read of its asset)."""
    hooks = hooks or ApplyHooks()
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    if hooks.progress is not None:
        hooks.progress("Loading manifests...")
    run = open_run(options, paths, filters, max_change_percent)
    opened = [target.session for target in run.targets if target.session is not None]
    try:
        with _locked(opened, lock_timeout, hooks):
            return _apply_run(run, parallelism, force, hooks)
    finally:
        report_retries(run.sessions)


def _apply_run(run: Run, parallelism: int, force: bool, hooks: ApplyHooks) -> ApplyRun:
    plans = interrupts.run(
        plan_run(run, parallelism=parallelism, progress=hooks.progress, counter=hooks.on_count)
    )
    hooks.on_plan(plans)
    _check_planned(plans)
    if not plans.by_action(Action.UPDATE):
        return ApplyRun(plans)
    _check_threshold(plans, force, hooks, run.safety, shown=True)
    if not hooks.confirm(plans):
        return ApplyRun(plans, cancelled=True)
    sessions = [target.opened() for target in run.targets]

    async def work(cancel: asyncio.Event) -> dict[str, ApplyResult]:
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(s.client(parallelism)) for s in sessions]
            return await _send_all(plans, clients, state, parallelism, cancel, hooks)

    with run.state() as state:
        return _finished(plans, _run_interruptible(work, hooks))


def apply_saved(
    options: GlobalOptions,
    path: Path,
    *,
    parallelism: int = WRITE_PARALLELISM,
    force: bool = False,
    hooks: ApplyHooks | None = None,
    lock_timeout: float = 0.0,
    max_change_percent: float | None = None,
) -> ApplyRun:
    """Apply a saved plan file under each target's write lock: every target planned, each the
    same target and project as now, under its threshold, and none stale (each target checked
    against its own live state and its write-only records)."""
    hooks = hooks or ApplyHooks()
    plans = _narrowed(planfile.read_plan(path).plan, options.targets, path)
    _check_planned(plans)
    config = load_config(config_path(options))
    if len(plans.plans) > 1:
        given = [flag for flag, value in _single_target_flags(options) if value]
        if given:
            raise ConfigError(
                f"{', '.join(given)} applies to one target, but {path} covers "
                f"{len(plans.plans)}; narrow it with --target"
            )
    sessions = []
    for plan in plans.plans:
        session = _open(options, config, plan.target if plan.target in config.targets else None)
        _check_same_target(plan, session.target, path)
        sessions.append(session)
    by_plan = {id(plan): s for plan, s in zip(plans.plans, sessions, strict=True)}
    _check_threshold(
        plans,
        force,
        hooks,
        lambda plan: by_plan[id(plan)].safety(max_change_percent),
        shown=False,
    )

    async def work(cancel: asyncio.Event) -> dict[str, ApplyResult]:
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(s.client(parallelism)) for s in sessions]
            moved = await asyncio.gather(
                *(
                    find_stale(p, c, live_fingerprint)
                    for p, c in zip(plans.plans, clients, strict=True)
                )
            )
            stale = [
                _with_records(plan, found, state)
                for plan, found in zip(plans.plans, moved, strict=True)
            ]
            if any(stale):
                raise ApplyRefused(_stale_refusal(plans, stale))
            return await _send_all(plans, clients, state, parallelism, cancel, hooks)

    try:
        with (
            _locked(sessions, lock_timeout, hooks),
            WriteOnlyState(config.state or DEFAULT_STATE_PATH) as state,
        ):
            done = _finished(plans, _run_interruptible(work, hooks))
    finally:
        report_retries(sessions)
    done.saved = path
    return done


def _narrowed(plans: PlanSet, names: Sequence[str], path: Path) -> PlanSet:
    """The saved plan's targets that ``--target`` names (all of them without ``--target``)."""
    if not names:
        return plans
    have = [plan.target for plan in plans.plans]
    absent = [name for name in names if name not in have]
    if absent:
        raise ApplyRefused(
            f"{path} has no plan for target {', '.join(absent)} (it covers "
            f"{', '.join(str(t) for t in have)}); nothing was sent"
        )
    return PlanSet([p for p in plans.plans if p.target in names], created_at=plans.created_at)


def _with_records(
    plan: Plan, moved: Sequence[StaleAsset], state: WriteOnlyState
) -> list[StaleAsset]:
    """The stale assets of ``plan``: those whose write-only record changed since it was made
    (it would send older write-only values back), then those whose live state moved."""
    records = state.get_many(plan.project_id or "", [a.asset_id for a in plan.assets])
    stale = stale_records(plan, {k: record_text(v) for k, v in records.items()})
    listed = {item.asset_id for item in stale}
    return stale + [item for item in moved if item.asset_id not in listed]


def _stale_refusal(plans: PlanSet, stale: Sequence[Sequence[StaleAsset]]) -> str:
    if len(plans.plans) == 1:
        return stale_message(stale[0])
    parts = [
        f"target {plan.target}: {stale_message(items)}"
        for plan, items in zip(plans.plans, stale, strict=True)
        if items
    ]
    return "\n".join(parts)


def _finished(plans: PlanSet, results: dict[str, ApplyResult]) -> ApplyRun:
    stopped = next((result for result in results.values() if result.interrupted), None)
    merged = ApplyResult(
        [r for result in results.values() for r in result.results],
        interrupted=stopped is not None,
        interrupted_by=stopped.interrupted_by if stopped else None,
        interrupt_exit_code=stopped.interrupt_exit_code if stopped else 130,
        reads=ReadCounts.total(result.reads for result in results.values()),
    )
    return ApplyRun(plans, merged, results=results)


async def _send_all(
    plans: PlanSet,
    clients: Sequence[MetaStudioClient],
    state: WriteOnlyState,
    parallelism: int,
    cancel: asyncio.Event,
    hooks: ApplyHooks,
) -> dict[str, ApplyResult]:
    """Send every target's changes at once, each target through its own client (its own
    pacing); all targets finish before a failure of one is raised, so nothing is abandoned."""
    todo = len(plans.by_action(Action.UPDATE))
    if todo:
        hooks.on_start(todo, parallelism)
    several = len(plans.plans) > 1

    async def one(plan: Plan, client: MetaStudioClient) -> ApplyResult:
        label = plan.target if several else None

        def named(result: AssetResult) -> AssetResult:
            return replace(result, target=label) if label else result

        result = await apply_plan(
            plan,
            client,
            state=state,
            parallelism=parallelism,
            cancel=cancel,
            on_result=lambda item: hooks.on_result(named(item)),
        )
        return replace(result, results=[named(r) for r in result.results])

    outcomes = await asyncio.gather(
        *(one(p, c) for p, c in zip(plans.plans, clients, strict=True)), return_exceptions=True
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return {
        str(plan.target): outcome
        for plan, outcome in zip(plans.plans, outcomes, strict=True)
        if isinstance(outcome, ApplyResult)
    }


def _run_interruptible(
    work: Callable[[asyncio.Event], Awaitable[dict[str, ApplyResult]]], hooks: ApplyHooks
) -> dict[str, ApplyResult]:
    """Run ``work(cancel)`` with Ctrl-C, SIGTERM and the run's deadline wired to the cancel
    event: nothing new starts, the requests in flight finish, and the results say what stopped
    them.  A second stop abandons the requests in flight (:class:`ApplyAborted`)."""
    stops: list[interrupts.Stopped] = []

    async def main() -> dict[str, ApplyResult]:
        cancel = asyncio.Event()

        def on_stop(stop: interrupts.Stopped) -> None:
            stops.append(stop)
            cancel.set()
            hooks.on_interrupt(stop)

        with interrupts.graceful(on_stop):
            results = await work(cancel)
        if not stops:
            return results
        stop = stops[0]
        return {
            name: replace(result, interrupted_by=stop.cause, interrupt_exit_code=stop.exit_code)
            if result.interrupted
            else result
            for name, result in results.items()
        }

    try:
        return interrupts.run(main())
    except asyncio.CancelledError:
        aborted = ApplyAborted(
            "Apply aborted: requests in flight were abandoned and their outcome is unknown. "
            "Run `reconciler plan` to see the live state."
        )
        aborted.exit_code = stops[0].exit_code if stops else ApplyAborted.exit_code
        raise aborted from None


# --- self-heal (watch) -------------------------------------------------------------------------


@dataclass
class HealRun:
    """One self-heal attempt on one target: the plan made under the lock and what applying it
    did, or why nothing was sent (``refused``: the safety threshold's message; ``locked``: the
    holder)."""

    plan: Plan | None = None
    result: ApplyResult | None = None
    refused: str | None = None
    locked: LockHeld | None = None


async def heal(
    session: Session,
    loaded: Sequence[LoadedManifest],
    asset_ids: Sequence[str],
    *,
    parallelism: int = WRITE_PARALLELISM,
    cancel: asyncio.Event | None = None,
    hooks: ApplyHooks | None = None,
) -> HealRun:
    """Apply the manifests of ``asset_ids`` back through apply's own steps: under the target's
    project lock (failing at once when another writer has it), from a plan of every managed
    asset made under that lock (:func:`_plan_one`, the path every plan takes), refused when
    that plan crosses the safety threshold (apply's rule without ``--force``), and sent by
    :func:`_send_all`, apply's sender.  Only the UPDATE rows of ``asset_ids`` are sent."""
    hooks = hooks or ApplyHooks()
    try:
        with project_lock(session, command="watch --self-heal"), session.state() as state:
            plan = await _plan_one(session, loaded, state, parallelism, hooks.progress)
            refused = threshold_message(plan)
            if refused:
                return HealRun(plan=plan, refused=refused)
            wanted = set(asset_ids)
            rows = [a for a in plan.assets if a.asset_id in wanted and a.action is Action.UPDATE]
            chosen = PlanSet([replace(plan, assets=rows)], created_at=plan.created_at)
            async with session.client(parallelism) as client:
                results = await _send_all(
                    chosen, [client], state, parallelism, cancel or asyncio.Event(), hooks
                )
            return HealRun(plan=plan, result=next(iter(results.values())))
    except LockHeld as exc:
        return HealRun(locked=exc)
