"""Streamed runs: each target's live reads overlap the load of the manifests.

The manifests load in worker processes (:class:`StreamedLoad`).  Each target's reads start
when the run learns it: at once for the targets known before any file is read (each
``--target``, or the one target of a configuration with at most one), else when the first
manifest naming or following it arrives; each target has its own session and client, so its own
credentials and pacing.  Each chunk's valid manifests go to their target's reads as the chunk
loads.  The first invalid manifest (or a ``metadata.target`` that names no target, or
``--endpoint``-like flags and a second target) cancels every target's reads at once; the load
goes on without the network so that every problem is reported together.  Which target each
manifest belongs to, and every check, is the :class:`~reconciler.run.selection.Selection`'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from reconciler.api.client import MetaStudioClient
from reconciler.api.config import ReconcilerConfig
from reconciler.engine.diff import Desired
from reconciler.engine.planner import desired_from_loaded
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.manifest.background import StreamedLoad
from reconciler.manifest.gitrev import Changes
from reconciler.manifest.loader import Declared
from reconciler.options import GlobalOptions
from reconciler.run.locks import StreamedLocks
from reconciler.run.selection import Filters, Selection
from reconciler.run.session import Session, TargetNamed, open_target
from reconciler.times import now_rfc3339

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class Reads(Protocol[R_co]):
    """A target's live reads in a streamed run: started before its manifests are known, fed
    their desired assets chunk by chunk, cancelled at once when the run stops reading."""

    def start(self, expected: int, *, exact: bool = False) -> None: ...

    def add(self, desired: Sequence[Desired]) -> None: ...

    async def cancel(self) -> None: ...

    async def finish(self, session: Session) -> R_co: ...


class Kind(Protocol[R]):
    """What a streamed run makes of each target: its reads, the result of a target that
    could not be read, and the finishing touches of one that could."""

    def reads(self, lane: Lane[Any], client: MetaStudioClient, parallelism: int) -> Reads[R]: ...

    def loaded(self, lanes: Sequence[Lane[Any]]) -> None: ...

    def done(self, lane: Lane[Any], result: R) -> R: ...

    def failed(self, lane: Lane[Any], error: str) -> R: ...


@dataclass
class Lane(TargetNamed, Generic[R]):
    """One target of a streamed run, opened when the run learns it (a ``--target``, or the
    first manifest that names or follows it): its session, client and reads."""

    name: str | None
    session: Session | None = None
    error: ReconcilerError | None = None  # the session could not be opened
    reads: Reads[R] | None = None  # None: not reading (yet)
    desired: list[Desired] = field(default_factory=list)  # the target's selected manifests
    declared: int = 0  # the target's manifests before --asset / --selector
    client: MetaStudioClient | None = None
    prefix: str = ""  # "[name] " when the run may cover several targets (progress only)
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class TargetResult(Generic[R]):
    """One target's result with its session (None when it could not be opened)."""

    session: Session | None
    result: R


class Streamed(Generic[R]):
    """One run over the manifests under ``paths`` whose live reads overlap their load."""

    def __init__(
        self,
        kind: Kind[R],
        options: GlobalOptions,
        config: ReconcilerConfig,
        paths: Sequence[str],
        filters: Filters,
        parallelism: int,
        *,
        progress: Callable[[str], None] | None = None,
        locks: StreamedLocks | None = None,
        changes: Changes | None = None,
    ) -> None:
        self.kind = kind
        # --changed-since: ``paths`` are the changed files; only the changed documents are read.
        self.changes = changes
        self.options = options
        self.config = config
        self.paths = paths
        self.filters = filters
        self.parallelism = parallelism
        self.say = progress or (lambda _message: None)
        self.locks = locks
        self.selection = Selection(options, config, filters)
        self.lanes: dict[str | None, Lane[R]] = {}
        self.created_at = now_rfc3339()
        self.several = False  # known once the load is over
        self._known = self.selection.known_targets()
        self._invalid = False  # a problem: the run will fail; nothing more is read or kept
        self._reading = True  # False once a problem or another writer's lock stopped the reads
        self._loading = True
        self._expected = 0
        self._stack: AsyncExitStack | None = None

    def ordered(self) -> list[Lane[R]]:
        """The targets in the order of ``--target``, else of the configuration."""
        return [self.lanes[name] for name in self.selection.ordered(list(self.lanes))]

    async def run(self) -> list[TargetResult[R]]:
        """Every target's result with its session, in target order."""
        self.say("Loading manifests...")
        async with AsyncExitStack() as stack:
            self._stack = stack
            try:
                await self._load()
                lanes = await self._checked()
                results = await asyncio.gather(*(self._finish(lane) for lane in lanes))
                return [
                    TargetResult(lane.session, r) for lane, r in zip(lanes, results, strict=True)
                ]
            finally:
                for lane in self.lanes.values():
                    if lane.reads is not None:
                        await lane.reads.cancel()

    async def _load(self) -> None:
        selection = self.selection
        async with StreamedLoad([Path(p) for p in self.paths]) as load:
            self._expected = len(self.filters.asset_ids) if self.filters.asset_ids else load.files
            if self.changes is not None:
                self._expected = len(self.changes.changed)
            for name in self._known:
                await self._lane(name)
            for name in self._removed_owners():
                await self._lane(name)
            async for chunk in load:
                if chunk.problems:
                    await self._fail()
                chosen: dict[str | None, list[Declared]] = {}
                for item in chunk.manifests:
                    placed = selection.place(item)
                    if placed is None:
                        continue
                    lane = self.lanes.get(placed.target) or await self._lane(placed.target)
                    lane.declared += 1
                    if placed.chosen and self._changed(item):
                        chosen.setdefault(placed.target, []).append(item)
                if selection.refused:
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
        selection.finish()
        if not self.lanes:
            await self._lane(self.config.implicit_target)

    def _changed(self, item: Declared) -> bool:
        """Whether the run plans ``item``: every manifest, or with ``--changed-since`` the
        documents changed since the revision."""
        return self.changes is None or item.asset_id in self.changes.changed

    def _removed_owners(self) -> list[str | None]:
        """The targets of documents removed since ``--changed-since``'s revision (each
        target's plan lists its own), those of the run only."""
        if self.changes is None:
            return []
        owners = {self.selection.owner_of(document.target) for document in self.changes.removed}
        chosen = self.options.targets
        known: set[str | None] = set(self.config.targets) or {None}
        return [
            owner
            for owner in sorted(owners, key=str)
            if owner in known and (not chosen or owner in chosen)
        ]

    async def _lane(self, name: str | None) -> Lane[R]:
        """The lane of target ``name``, opened (and reading) the first time it is named."""
        lane = self.lanes.get(name)
        if lane is not None:
            return lane
        lane = self.lanes[name] = Lane(name)
        if len(self.lanes) > 1 and self.selection.one_target_flags():
            await self._fail()  # refused once the load is over (_checked)
        if self._invalid:
            return lane
        try:
            lane.session = open_target(self.options, self.config, name)
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

    async def _begin(self, lane: Lane[R], expected: int) -> None:
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
        exact = bool(self.filters.asset_ids) or self.changes is not None
        lane.reads.start(expected, exact=self._loading and exact)
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

    async def _checked(self) -> list[Lane[R]]:
        """The run's targets once the load is valid, after the selection's last checks."""
        lanes = self.ordered()
        self.several = len(lanes) > 1
        self.selection.check_targets([lane.name or "default" for lane in lanes])
        if not self.several and lanes[0].error is not None:
            raise lanes[0].error
        if self.locks is not None and self.locks.contended:
            await self.locks.wait_for_all([lane.session for lane in lanes if lane.session])
        if self.changes is not None:  # the id scan of every manifest, run while reading
            await asyncio.to_thread(self.changes.settle)
        self.kind.loaded(lanes)
        return lanes

    async def _finish(self, lane: Lane[R]) -> R:
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
