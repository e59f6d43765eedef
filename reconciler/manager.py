"""The run layer: every command's run, from options to a result the CLI renders.

Each command module under ``reconciler/cli`` parses its options, calls one function here, hands
the result to a renderer and maps it to an exit code.  These functions print nothing: they
load and select the manifests, group them by target, each with its own :class:`Session` of
configuration, target and credentials from the environment, read and write live state through
:mod:`reconciler.live` and the client, every target at once, and let the engine decide.
``plan``, ``apply MANIFESTS`` and ``drift`` read live state while the manifests load
(:class:`_Streamed`: one lane per target, opened as the load names it); ``watch`` hands over
manifests it loaded itself (:func:`open_run`: a :class:`Run` of :class:`TargetRun`).  What the
CLI must show while a run is under way (the plan before the question, each asset's result as it
finishes) it receives through :class:`ApplyHooks`.

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
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from reconciler import interrupts
from reconciler.api.auth import Credentials, credentials_from_env
from reconciler.api.client import AnswerObserver, MetaStudioClient
from reconciler.api.config import ReconcilerConfig, Target, config_path, load_config, resolve_target
from reconciler.api.pacing import Pacer
from reconciler.api.retries import RetryTally
from reconciler.constants import DEFAULT_PATHS, PAGE_SIZE, READ_PARALLELISM, WRITE_PARALLELISM
from reconciler.engine import planfile
from reconciler.engine.apply import ApplyResult, AssetResult, ReadCounts, StaleAsset, stale_records
from reconciler.engine.diff import Desired, record_text
from reconciler.engine.drift import DriftReport, ProjectDrift, project_drift
from reconciler.engine.fingerprint import live_fingerprint
from reconciler.engine.history import DriftHistory
from reconciler.engine.lock import POLL_SECONDS, HeldLock, LockHeld, LockHolder, ProjectLock
from reconciler.engine.plan import Action, Plan, PlanSet
from reconciler.engine.planner import desired_from_loaded
from reconciler.engine.safety import SafetyPolicy
from reconciler.engine.state import DEFAULT_STATE_PATH, WriteOnlyState
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.live.apply import apply_plan, find_stale
from reconciler.live.fetch import ProjectReads, show_all
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
    from reconciler.importer import ImportResult, Known

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

    @functools.cached_property
    def pacer(self) -> Pacer:
        """The session's pacing, shared by its clients: the limits are the tenant's, so the
        apply that follows a plan in one run must not start with a full burst again."""
        return Pacer(self.target.rate_limits)

    def client(self, parallelism: int = READ_PARALLELISM) -> MetaStudioClient:
        return MetaStudioClient(
            self.target,
            self.credentials,
            parallelism=parallelism,
            on_answer=self.on_answer,
            tally=self.retries,
            pacer=self.pacer,
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


class _TargetNamed:
    """A target of a run by its name and, once opened, its session."""

    name: str | None
    session: Session | None

    @property
    def label(self) -> str:
        return self.session.target.name if self.session else (self.name or "default")

    @property
    def place(self) -> tuple[str | None, str | None]:
        """The project id and endpoint, when the session opened."""
        if self.session is None:
            return None, None
        return self.session.target.project_id, self.session.target.endpoint


@dataclass
class TargetRun(_TargetNamed):
    """One target of a run: its manifests and its session (a tenant of its own: credentials,
    pacing and rate limits), or why the session could not be opened."""

    name: str | None  # the target's name in reconciler.yaml; None: flags and environment only
    manifests: list[LoadedManifest]
    session: Session | None = None
    error: ReconcilerError | None = None
    declared: int = 0  # the target's manifests before --asset / --selector

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
    ones by target, and open each target's session: the run of manifests already loaded
    (``watch``).  ``plan``, ``apply MANIFESTS`` and ``drift`` read while they load
    (:class:`_Streamed`), under the same rules, checks and messages.

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
    """Plan the manifests under ``paths`` against every target of the run, concurrently,
    reading live state while the manifests load (:class:`_Streamed`).

    A target that cannot be planned (unreachable, credentials rejected) is reported in its own
    plan (``Plan.error``) when the run covers several; a one-target run raises, as a setup
    error.  With ``out`` the plan is also saved there for ``reconciler apply PLANFILE``.
    ``counter`` gets ``("reading live assets", done, total)`` over all targets as live state
    arrives, from the end of the load on (when the total is known).
    """
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    plans, _sessions = await _streamed_plan(
        options,
        load_config(config_path(options)),
        paths,
        filters or Filters(),
        max_change_percent,
        parallelism=parallelism,
        progress=progress,
        counter=counter,
    )
    if out is not None:
        planfile.write_plan(out, plans)
    return plans


async def _streamed_plan(
    options: GlobalOptions,
    config: ReconcilerConfig,
    paths: Sequence[str],
    filters: Filters,
    max_change_percent: float | None,
    *,
    parallelism: int,
    progress: Callable[[str], None] | None,
    counter: StageCounter | None,
    locks: _Locks | None = None,
    sessions: list[Session | None] | None = None,
) -> tuple[PlanSet, list[Session | None]]:
    """Every target's plan (:class:`_Streamed` with :class:`_PlanKind`) and, per plan, its
    session.  The retries are reported here, unless ``sessions`` receives every target's
    session, even when the run raises (``apply`` reports them after its writes)."""
    with Run(config).state() as state:
        kind = _PlanKind(state, filters, max_change_percent, counter, progress)
        streamed = _Streamed(
            kind, options, config, paths, filters, parallelism, progress=progress, locks=locks
        )
        try:
            plans = PlanSet(await streamed.run(), created_at=streamed.created_at)
        finally:
            if sessions is not None:
                sessions.extend(streamed.sessions)
            else:
                report_retries(streamed.sessions)
    return plans, streamed.sessions


# --- streamed runs: live reads while the manifests load ----------------------------------------

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class _Reads(Protocol[R_co]):
    """A target's live reads in a streamed run: started before its manifests are known, fed
    their desired assets chunk by chunk, cancelled at once when the run stops reading."""

    def start(self, expected: int, *, exact: bool = False) -> None: ...

    def add(self, desired: Sequence[Desired]) -> None: ...

    async def cancel(self) -> None: ...

    async def finish(self, session: Session) -> R_co: ...


class _Kind(Protocol[R]):
    """What a streamed run makes of each target: its reads, the result of a target that
    could not be read, and the finishing touches of one that could."""

    def reads(self, lane: _Lane[Any], client: MetaStudioClient, parallelism: int) -> _Reads[R]: ...

    def loaded(self, lanes: Sequence[_Lane[Any]]) -> None: ...

    def done(self, lane: _Lane[Any], result: R) -> R: ...

    def failed(self, lane: _Lane[Any], error: str) -> R: ...


@dataclass
class _Lane(_TargetNamed, Generic[R]):
    """One target of a streamed run, opened when the run learns it (a ``--target``, or the
    first manifest that names or follows it): its session, client and reads."""

    name: str | None
    session: Session | None = None
    error: ReconcilerError | None = None  # the session could not be opened
    reads: _Reads[R] | None = None  # None: not reading (yet)
    desired: list[Desired] = field(default_factory=list)  # the target's selected manifests
    declared: int = 0  # the target's manifests before --asset / --selector
    client: MetaStudioClient | None = None
    prefix: str = ""  # "[name] " when the run may cover several targets (progress only)
    started: float = field(default_factory=time.monotonic)


class _Locks:
    """``apply``'s write locks in a streamed run: each target's project is locked when the
    target is learnt, before its first read, without waiting (so two runs never wait on each
    other's second lock).  When one is taken by another writer, the run stops reading,
    releases what it holds once the load is over, and waits for every lock in one order
    (:func:`_locked`, up to ``--lock-timeout``) before it reads again."""

    def __init__(self, stack: contextlib.ExitStack, timeout: float, hooks: ApplyHooks) -> None:
        self.stack = stack
        self.timeout = timeout
        self.hooks = hooks
        self.places: set[tuple[str, str]] = set()
        self.contended = False
        self.held_by: LockHolder | None = None  # the other writer last found holding one

    def take(self, session: Session) -> bool:
        """Lock the session's project now if it is free; False when another writer has it."""
        place = (session.target.endpoint.rstrip("/"), session.target.project_id)
        if place in self.places:
            return True
        try:
            self.stack.enter_context(project_lock(session, timeout=0.0))
        except LockHeld as exc:
            self.contended = True
            self.held_by = exc.holder
            return False
        self.places.add(place)
        return True

    async def wait_for_all(self, sessions: Sequence[Session]) -> None:
        """Release every lock, then take all of them in :func:`_locked`'s order, each waiting
        up to the timeout; the wait is asynchronous, so Ctrl-C and SIGTERM end it at once."""
        self.stack.close()
        self.places.clear()
        places: dict[tuple[str, str], Session] = {}
        for session in sessions:
            places.setdefault(
                (session.target.endpoint.rstrip("/"), session.target.project_id), session
            )
        for place in sorted(places):
            started = time.monotonic()
            told = False
            while not self.take(places[place]):
                waited = time.monotonic() - started
                holder = self.held_by
                assert holder is not None
                if waited >= self.timeout:
                    raise LockHeld(*place, holder, round(waited, 1) if self.timeout else 0.0)
                if not told:
                    self.hooks.on_lock_wait(holder, self.timeout)
                    told = True
                await asyncio.sleep(min(POLL_SECONDS, self.timeout - waited))


class _Streamed(Generic[R]):
    """One run over the manifests under ``paths`` whose live reads overlap their load.

    The manifests load in worker processes (:class:`StreamedLoad`).  Each target's reads start
    when the run learns it: at once for the targets known before any file is read (each
    ``--target``, or the one target of a configuration with at most one), else when the first
    manifest naming or following it arrives; each target has its own session and client, so
    its own credentials and pacing.  Each chunk's valid manifests go to their target's reads as
    the chunk loads.  The first invalid manifest (or a ``metadata.target`` that names no
    target, or ``--endpoint``-like flags and a second target) cancels every target's reads at
    once; the load goes on without the network so that every problem is reported together.
    The selection, its checks, their order and their messages are those of :func:`open_run`;
    one target's failure is isolated in its own result as :func:`_isolated` does.
    """

    def __init__(
        self,
        kind: _Kind[R],
        options: GlobalOptions,
        config: ReconcilerConfig,
        paths: Sequence[str],
        filters: Filters,
        parallelism: int,
        *,
        progress: Callable[[str], None] | None = None,
        locks: _Locks | None = None,
    ) -> None:
        self.kind = kind
        self.options = options
        self.config = config
        self.paths = paths
        self.filters = filters
        self.parallelism = parallelism
        self.say = progress or (lambda _message: None)
        self.locks = locks
        self.lanes: dict[str | None, _Lane[R]] = {}
        self.created_at = now_rfc3339()
        self.several = False  # known once the load is over
        self._known = _known_targets(options, config)
        self._invalid = False  # a problem: the run will fail; nothing more is read or kept
        self._reading = True  # False once a problem or another writer's lock stopped the reads
        self._loading = True
        self._expected = 0
        self._stack: AsyncExitStack | None = None

    @property
    def sessions(self) -> list[Session | None]:
        """Every target's session, in the run's target order."""
        return [lane.session for lane in self.ordered()]

    def ordered(self) -> list[_Lane[R]]:
        """The targets in the order of ``--target``, else of the configuration."""
        order: list[str | None] = [*self.options.targets] or [None, *self.config.targets]
        names = sorted(self.lanes, key=lambda n: order.index(n) if n in order else len(order))
        return [self.lanes[name] for name in names]

    async def run(self) -> list[R]:
        """Every target's result, in target order; raises what :func:`open_run` would."""
        self.say("Loading manifests...")
        async with AsyncExitStack() as stack:
            self._stack = stack
            try:
                await self._load()
                lanes = await self._checked()
                return list(await asyncio.gather(*(self._finish(lane) for lane in lanes)))
            finally:
                for lane in self.lanes.values():
                    if lane.reads is not None:
                        await lane.reads.cancel()

    async def _load(self) -> None:
        options, config, filters = self.options, self.config, self.filters
        seen = skipped = 0
        declared: set[str] = set()
        refused: ConfigError | None = None  # raised after the manifests' problems
        async with StreamedLoad([Path(p) for p in self.paths]) as load:
            self._expected = len(filters.asset_ids) if filters.asset_ids else load.files
            for name in self._known:
                await self._lane(name)
            async for chunk in load:
                if chunk.problems:
                    await self._fail()
                chosen: dict[str | None, list[Declared]] = {}
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
                        continue
                    lane = self.lanes.get(owner) or await self._lane(owner)
                    lane.declared += 1
                    if filters.matches(item):
                        chosen.setdefault(owner, []).append(item)
                if refused is not None:
                    await self._fail()
                if not self._invalid:
                    for owner, items in chosen.items():
                        lane = self.lanes[owner]
                        desired = [desired_from_loaded(item) for item in items]
                        lane.desired.extend(desired)
                        if lane.reads is not None:
                            lane.reads.add(desired)
            load.raise_problems()
        self._loading = False
        if refused is not None:
            raise refused
        if skipped:
            level = logging.WARNING if skipped == seen else logging.INFO
            chosen_names = ", ".join(options.targets)
            log.log(
                level,
                "skipped %s of targets other than %s",
                plural(skipped, "manifest"),
                chosen_names,
            )
        if not self.lanes:
            await self._lane(config.implicit_target)
        unknown = [a for a in filters.asset_ids if a not in declared]
        if unknown:
            raise ReconcilerError(f"--asset {', '.join(unknown)}: no manifest declares this asset")

    async def _lane(self, name: str | None) -> _Lane[R]:
        """The lane of target ``name``, opened (and reading) the first time it is named."""
        lane = self.lanes.get(name)
        if lane is not None:
            return lane
        lane = self.lanes[name] = _Lane(name)
        if len(self.lanes) > 1 and any(
            value for _flag, value in _single_target_flags(self.options)
        ):
            await self._fail()  # refused once the load is over (_checked)
        if self._invalid:
            return lane
        try:
            lane.session = _open(self.options, self.config, name)
        except ConfigError as exc:
            lane.error = exc  # raised or reported once the run's targets are known
            return lane
        if len(self._known) != 1:
            lane.prefix = f"[{lane.label}] "
        if self.locks is not None and self._reading and not self.locks.take(lane.session):
            await self._stop()  # another writer: wait for every lock once the load is over
        if self._reading:
            await self._begin(lane, self._expected if self._loading else 0)
        return lane

    async def _begin(self, lane: _Lane[R], expected: int) -> None:
        """Start the lane's reads (its session is open) with the manifests known so far."""
        assert self._stack is not None and lane.session is not None
        if lane.client is None:
            # Entering a client only creates its connection pool: nothing is sent yet.
            client = lane.session.client(self.parallelism)
            lane.client = await self._stack.enter_async_context(client)
        lane.reads = self.kind.reads(lane, lane.client, self.parallelism)
        lane.started = time.monotonic()
        endpoint = lane.session.target.endpoint
        if self._loading:
            self.say(f"{lane.prefix}Reading live assets from {endpoint} while loading manifests...")
        else:
            self.say(f"{lane.prefix}Reading {len(lane.desired)} live assets from {endpoint}...")
        # With --asset the run knows how many assets it wants: their reads leave as soon as
        # their manifests are found.
        lane.reads.start(expected, exact=self._loading and bool(self.filters.asset_ids))
        lane.reads.add(lane.desired)

    async def _stop(self) -> None:
        """Cancel every target's reads now; nothing more is sent while the manifests load."""
        self._reading = False
        for lane in self.lanes.values():
            if lane.reads is not None:
                await lane.reads.cancel()
                lane.reads = None

    async def _fail(self) -> None:
        """A problem: the run will fail once every problem is known; stop reading at once."""
        if not self._invalid:
            self._invalid = True
            await self._stop()
            for lane in self.lanes.values():
                lane.desired.clear()

    async def _checked(self) -> list[_Lane[R]]:
        """The run's targets once the load is valid, after :func:`open_run`'s last checks."""
        lanes = self.ordered()
        self.several = len(lanes) > 1
        if self.several:
            given = [flag for flag, value in _single_target_flags(self.options) if value]
            if given:
                raise ConfigError(
                    f"{', '.join(given)} applies to one target, but this run covers "
                    f"{len(lanes)} ({', '.join(lane.name or 'default' for lane in lanes)}); "
                    "narrow it with --target"
                )
        elif lanes[0].error is not None:
            raise lanes[0].error
        if self.locks is not None and self.locks.contended:
            await self.locks.wait_for_all([lane.session for lane in lanes if lane.session])
        self.kind.loaded(lanes)
        return lanes

    async def _finish(self, lane: _Lane[R]) -> R:
        """The lane's result; in a run over several targets, its failure is its own."""
        try:
            if lane.error is not None:
                raise lane.error
            assert lane.session is not None
            if lane.reads is None:  # not read while loading (another writer's lock)
                await self._begin(lane, sum(1 for d in lane.desired if d.app_user_id is None))
            assert lane.reads is not None
            return self.kind.done(lane, await lane.reads.finish(lane.session))
        except ReconcilerError as exc:
            if not self.several:
                raise
            return self.kind.failed(lane, str(exc))


def _known_targets(options: GlobalOptions, config: ReconcilerConfig) -> list[str | None]:
    """The targets a run covers whatever its manifests say: each ``--target``; or the one
    target of a configuration with at most one, that every manifest must name or follow.
    Empty when the run learns its targets from the manifests."""
    if options.targets:
        return list(options.targets)
    if not config.targets and config.default_target is None:
        return [None]  # flags and the environment only
    if len(config.targets) == 1 and config.implicit_target in config.targets:
        return [config.implicit_target]
    return []


class _PlanReads:
    """A target's plan reads (:class:`PlanRun`) as a streamed run drives them."""

    def __init__(self, run: PlanRun) -> None:
        self.run = run

    def start(self, expected: int, *, exact: bool = False) -> None:
        self.run.start(expected, exact=exact)

    def add(self, desired: Sequence[Desired]) -> None:
        self.run.add(desired)

    async def cancel(self) -> None:
        await self.run.cancel()

    async def finish(self, session: Session) -> Plan:
        target = session.target
        return await self.run.finish(target_name=target.name, endpoint=target.endpoint)


class _PlanKind:
    """A streamed plan: each target's plan with its threshold and targeting warnings, and
    the live progress counter over every target (shown once the load has given its total)."""

    def __init__(
        self,
        state: WriteOnlyState,
        filters: Filters,
        max_change_percent: float | None,
        counter: StageCounter | None,
        progress: Callable[[str], None] | None,
    ) -> None:
        self.state = state
        self.filters = filters
        self.max_change_percent = max_change_percent
        self.counter = counter
        self.say = progress or (lambda _message: None)
        self._done: dict[str | None, int] = {}
        self._total: int | None = None

    def reads(self, lane: _Lane[Any], client: MetaStudioClient, parallelism: int) -> _PlanReads:
        name = lane.name
        self._done[name] = 0

        def arrived(count: int, _of: int) -> None:
            self._done[name] = count
            self._count()

        assert lane.session is not None
        return _PlanReads(
            PlanRun(
                client,
                state=self.state,
                project_id=lane.session.target.project_id,
                parallelism=parallelism,
                on_progress=arrived if self.counter is not None else None,
            )
        )

    def _count(self) -> None:
        if self.counter is not None and self._total is not None:
            self.counter("reading live assets", sum(self._done.values()), self._total)

    def loaded(self, lanes: Sequence[_Lane[Any]]) -> None:
        self._total = sum(len(lane.desired) for lane in lanes)
        if any(self._done.values()):
            self._count()

    def done(self, lane: _Lane[Any], result: Plan) -> Plan:
        assert lane.session is not None
        warning = threshold_message(result, lane.session.safety(self.max_change_percent))
        if warning:
            result.warnings.append(warning)
        if self.filters:
            result.warnings.insert(
                0, targeted_message(len(lane.desired), lane.declared, self.filters.flags)
            )
        elapsed = time.monotonic() - lane.started
        self.say(f"{lane.prefix}Planned {len(result.assets)} assets in {elapsed:.1f}s.")
        return result

    def failed(self, lane: _Lane[Any], error: str) -> Plan:
        project_id, endpoint = lane.place
        return Plan(
            [],
            target=lane.label,
            project_id=project_id,
            endpoint=endpoint,
            created_at=now_rfc3339(),
            error=error,
            unplanned=len(lane.desired),
        )


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


async def _plan_one(
    session: Session,
    loaded: Sequence[LoadedManifest],
    state: WriteOnlyState,
    parallelism: int,
    progress: Callable[[str], None] | None,
    *,
    policy: SafetyPolicy,
) -> Plan:
    """One target's plan of every managed asset, for watch's self-heal (made under the target's
    lock, checked against the target's own safety settings)."""
    target = session.target
    say = progress or (lambda _message: None)
    desired = [desired_from_loaded(item) for item in loaded]
    say(f"Reading {len(desired)} live assets from {target.endpoint}...")
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
        )
    warning = threshold_message(plan, policy)
    if warning:
        plan.warnings.append(warning)
    say(f"Planned {len(plan.assets)} assets in {time.monotonic() - started:.1f}s.")
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
    The listing does not depend on the manifests, so it runs while they load
    (:class:`_Streamed`).  Where the drift history (recorded by ``watch``, only read here)
    knows since when an asset differs, the report says so."""
    config = load_config(config_path(options))
    streamed = _Streamed(_DriftKind(), options, config, paths, Filters(), parallelism)
    try:
        projects = await streamed.run()
    finally:
        report_retries(streamed.sessions)
    report = DriftReport(projects, include_unmanaged=include_unmanaged)
    with Run(config).history() as history:
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
        return _unchecked(target.label, project_id, endpoint, error, len(target.manifests))

    return await _isolated(
        run, target, lambda session: _drift_one(session, target.manifests, parallelism), failed
    )


async def _drift_one(
    session: Session, loaded: Sequence[LoadedManifest], parallelism: int
) -> ProjectDrift:
    async with session.client(parallelism) as client:
        reads = _DriftReads(client, parallelism)
        reads.add([desired_from_loaded(item) for item in loaded])
        return await reads.finish(session)


class _DriftReads:
    """A target's drift reads (:class:`ProjectReads`): the whole project, paged without
    waiting for the manifests when there are more than a page of them (with fewer the load
    takes milliseconds and an invalid manifest sends nothing), then by id every managed asset
    that no page held, so that only the service's "not found" makes one missing."""

    def __init__(self, client: MetaStudioClient, parallelism: int) -> None:
        self.reads: ProjectReads[Desired] = ProjectReads(client, parallelism)
        self.desired: list[Desired] = []

    def start(self, expected: int, *, exact: bool = False) -> None:
        if expected > PAGE_SIZE:
            self.reads.start()

    def add(self, desired: Sequence[Desired]) -> None:
        self.desired.extend(desired)

    async def cancel(self) -> None:
        await self.reads.cancel()

    async def finish(self, session: Session) -> ProjectDrift:
        read = await self.reads.finish(self.desired)
        target = session.target
        return project_drift(
            self.desired,
            list(read.rows.values()),
            target=target.name,
            project_id=target.project_id,
            endpoint=target.endpoint,
            failed=read.failed,
            missing=read.missing,
        )


class _DriftKind:
    """A streamed drift: each target's project compared with its manifests."""

    def reads(self, lane: _Lane[Any], client: MetaStudioClient, parallelism: int) -> _DriftReads:
        return _DriftReads(client, parallelism)

    def loaded(self, lanes: Sequence[_Lane[Any]]) -> None:
        return None

    def done(self, lane: _Lane[Any], result: ProjectDrift) -> ProjectDrift:
        return result

    def failed(self, lane: _Lane[Any], error: str) -> ProjectDrift:
        return _unchecked(lane.label, *lane.place, error, len(lane.desired))


def _unchecked(
    label: str, project_id: str | None, endpoint: str | None, error: str, manifests: int
) -> ProjectDrift:
    """The drift of a target that could not be read."""
    return ProjectDrift(
        target=label,
        project_id=project_id,
        endpoint=endpoint,
        assets=[],
        unmanaged=[],
        total=0,
        managed=0,
        error=error,
        unchecked_manifests=manifests,
    )


@dataclass(frozen=True)
class LiveAssets:
    """What an import read: the raw live assets, the requested ids the project does not have,
    the known assets whose read failed (with why), and the target's name."""

    assets: list[dict[str, Any]]
    missing: list[str]
    unreadable: dict[str, str]
    target_name: str


async def read_live(
    options: GlobalOptions,
    asset_ids: Sequence[str],
    *,
    parallelism: int = READ_PARALLELISM,
    known: Sequence[Known] = (),
) -> LiveAssets:
    """The raw live assets: those of ``asset_ids``, or, when it is empty, all of the project,
    and the ``known`` assets (those with a manifest already) that no page held, read by id: an
    asset shifted between pages while they were read is not lost."""
    session = open_session(options)
    missing: list[str] = []
    unreadable: dict[str, str] = {}
    try:
        async with session.client(parallelism) as client:
            if asset_ids:
                wanted = list(dict.fromkeys(asset_ids))
                found = {a: item.raw for a, item in (await client.fetch(wanted)).items()}
                # Not returned by the list: missing only when ShowAsset says "not found".
                from reconciler.importer import Known

                unseen = [Known(a, None) for a in wanted if a not in found]
                shown = await show_all(unseen, client, parallelism)
                found.update(shown.found)
                assets = [found[a] for a in wanted if a in found]
                missing = [a for a in wanted if a in shown.not_found]
                unreadable = {a: why.message for a, why in shown.failed.items()}
            else:
                reads: ProjectReads[Known] = ProjectReads(client, parallelism)
                read = await reads.finish(known)
                assets = list(read.rows.values())
                unreadable = {asset_id: why.message for asset_id, why in read.failed.items()}
    finally:
        report_retries([session])
    return LiveAssets(assets, missing, unreadable, session.target.name)


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
    with ``check`` nothing is written and the result says what would be.

    ``--all`` reads by id every asset that already has a manifest there and that no page of
    the project held; one whose read failed is refused (its manifest is left as it is)."""
    from reconciler import importer  # only import needs them (start-up)
    from reconciler.manifest.writer import index_by_asset_id

    existing = index_by_asset_id(directory)
    known = [] if asset_ids else importer.known_assets(existing)
    live = interrupts.run(read_live(options, asset_ids, parallelism=parallelism, known=known))
    # Record the target only when one was chosen explicitly: a manifest without it follows the
    # default target, which is what a single-target setup wants.
    target = live.target_name if options.target else None
    result = importer.write_imports(
        live.assets, directory, target=target, check=check, existing=existing
    )
    result.refused += [
        f"asset {asset_id!r}: reading it failed ({why}); its manifest was not refreshed"
        for asset_id, why in live.unreadable.items()
    ]
    return ImportRun(result, live.missing)


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
    select) with the streamed plan (reads overlap the load; nothing is written before the
    whole load is valid), show the plan, check each target's threshold, confirm, then send
    to every target at once (each write right after a fresh read of its asset)."""
    hooks = hooks or ApplyHooks()
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    config = load_config(config_path(options))
    opened: list[Session | None] = []
    try:
        with contextlib.ExitStack() as held:
            plans, sessions = interrupts.run(
                _streamed_plan(
                    options,
                    config,
                    paths,
                    filters or Filters(),
                    max_change_percent,
                    parallelism=parallelism,
                    progress=hooks.progress,
                    counter=hooks.on_count,
                    locks=_Locks(held, lock_timeout, hooks),
                    sessions=opened,
                )
            )
            by_plan = {
                id(plan): session
                for plan, session in zip(plans.plans, sessions, strict=True)
                if session is not None
            }
            return _apply_planned(
                plans,
                [by_plan[id(plan)] for plan in plans.plans if id(plan) in by_plan],
                lambda plan: by_plan[id(plan)].safety(max_change_percent),
                Run(config),
                parallelism,
                force,
                hooks,
            )
    finally:
        report_retries(opened)


def _apply_planned(
    plans: PlanSet,
    sessions: Sequence[Session],
    policy: Callable[[Plan], SafetyPolicy],
    run: Run,
    parallelism: int,
    force: bool,
    hooks: ApplyHooks,
) -> ApplyRun:
    """Show the plan made under the locks, check it, confirm, and send it (``sessions``:
    one per plan, in plan order, once every target could be planned)."""
    hooks.on_plan(plans)
    _check_planned(plans)
    if not plans.by_action(Action.UPDATE):
        return ApplyRun(plans)
    _check_threshold(plans, force, hooks, policy, shown=True)
    if not hooks.confirm(plans):
        return ApplyRun(plans, cancelled=True)

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
    asset made under that lock (:func:`_plan_one`), refused when that plan crosses the target's
    safety threshold (apply's rule without ``--force``), and sent by
    :func:`_send_all`, apply's sender.  Only the UPDATE rows of ``asset_ids`` are sent."""
    hooks = hooks or ApplyHooks()
    try:
        with project_lock(session, command="watch --self-heal"), session.state() as state:
            # The target's own safety settings, as apply uses them (not the defaults).
            policy = session.safety()
            plan = await _plan_one(
                session, loaded, state, parallelism, hooks.progress, policy=policy
            )
            refused = threshold_message(plan, policy)
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
