"""The watch loop: one cycle at a time, every interval, until SIGTERM or SIGINT.

A cycle (re)loads the manifests when their files changed, computes the drift of every target's
project through :class:`reconciler.run.WatchReads` (a full read first and every ``resync``
seconds; in between, only the assets changed since the last read), records it in the drift history,
updates the metrics and, with self-heal, applies drifted assets back through
:func:`reconciler.run.heal` (the apply rules: lock, plan under the lock, safety threshold).
A failed cycle is logged and counted; the next one runs on schedule.  Cycles never overlap: the
next starts one interval (plus a little jitter) after the previous one started, or at once when
it took longer.

Several replicas may watch one project (sharing a PostgreSQL state): one per project, the
leader (:class:`reconciler.run.Leadership`), records the history and heals; the others run the
same cycles for their metrics and stand by, claiming the leadership every ``leader_poll`` seconds
and at each cycle.  The leader confirms its lease at the start of each cycle, before recording
and before each heal, and steps down when it was lost.  A single replica simply always leads.

On the first SIGTERM/SIGINT nothing new starts: no further write is sent, the requests in flight
finish (up to ``grace`` seconds), and the process exits 0.  A second signal abandons them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import interrupts
from reconciler import run as runs
from reconciler.constants import READ_PARALLELISM
from reconciler.durations import format_duration
from reconciler.engine.apply import Outcome
from reconciler.engine.drift import (
    DRIFT_STATUSES,
    AssetDrift,
    DriftReport,
    DriftStatus,
    ProjectDrift,
)
from reconciler.engine.history import Observation, Resolution
from reconciler.errors import ReconcilerError
from reconciler.manifest.loader import LoadedManifest, discover, load_manifests
from reconciler.options import GlobalOptions
from reconciler.render.apply_text import crossing_message, result_line, violations_text
from reconciler.state import History, LockHolder
from reconciler.times import now_rfc3339
from reconciler.watch.backoff import HealBackoff
from reconciler.watch.http import MetricsServer
from reconciler.watch.metrics import CONTENT_TYPE, WatchMetrics

log = logging.getLogger("reconciler.watch")

DEFAULT_INTERVAL = 300.0
JITTER = 0.1  # each wait is the interval plus up to 10% of it, so replicas drift apart
DEFAULT_HEAL_BACKOFF = 60.0
DEFAULT_HEAL_BACKOFF_MAX = 3600.0
GRACE_SECONDS = 5.0
DEFAULT_LEADER_POLL = 5.0
Place = tuple[str, str]  # (endpoint, project)
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class WatchSettings:
    paths: tuple[str, ...]
    interval: float = DEFAULT_INTERVAL
    self_heal: bool = False
    metrics_addr: str | None = None
    once: bool = False
    heal_backoff: float = DEFAULT_HEAL_BACKOFF
    heal_backoff_max: float = DEFAULT_HEAL_BACKOFF_MAX
    parallelism: int = READ_PARALLELISM
    jitter: float = JITTER
    grace: float = GRACE_SECONDS
    leader_poll: float = DEFAULT_LEADER_POLL
    resync: float = runs.DEFAULT_RESYNC
    margin: float = runs.DEFAULT_MARGIN


@dataclass
class CycleOutcome:
    number: int
    ok: bool
    duration: float = 0.0
    report: DriftReport | None = None
    error: str | None = None
    heal: Counter[str] = field(default_factory=Counter)
    reads: list[runs.TargetRead] = field(default_factory=list)
    requests: int = 0  # sent to MetaStudio during the cycle, retries included

    @property
    def kind(self) -> str | None:
        """``full`` when any target was read whole, ``incremental`` when none was."""
        if not self.reads:
            return None
        return "full" if any(r.kind == "full" for r in self.reads) else "incremental"

    @property
    def exit_code(self) -> int:
        """drift's exit codes: 0 in sync, 2 drift, 1 error (a failed cycle included)."""
        if not self.ok or self.report is None:
            return 1
        return self.report.exit_code


class Watcher:
    """One ``reconciler watch`` process: settings, metrics, history and the cycle loop."""

    def __init__(
        self,
        options: GlobalOptions,
        settings: WatchSettings,
        metrics: WatchMetrics | None = None,
    ) -> None:
        self.options = options
        self.settings = settings
        self.metrics = metrics or WatchMetrics()
        self.backoff = HealBackoff(settings.heal_backoff, settings.heal_backoff_max)
        self.reads = runs.WatchReads(resync=settings.resync, margin=settings.margin)
        self.requests = 0  # every request sent, for the requests of each cycle
        self._run: runs.Run | None = None
        self.cycles = 0
        self.last_success: float | None = None  # monotonic
        self.last_success_at: str | None = None  # RFC 3339
        self.last_error: str | None = None
        self._manifests: tuple[object, list[LoadedManifest]] | None = None
        self._stop = asyncio.Event()
        self._cancel = asyncio.Event()  # apply's "start nothing new"
        self._cycle: asyncio.Task[CycleOutcome] | None = None
        # Which replica leads each watched project; None (a cycle run on its own): this one.
        self._leadership: runs.Leadership | None = None
        self._electing = asyncio.Lock()  # one confirm-or-claim at a time
        self._places: dict[str, Place] = {}  # target label -> (endpoint, project); replaced whole
        self._leader_seen: dict[Place, str] = {}  # the other leader last logged, per project
        self._claim_errors: dict[Place, str] = {}  # the state error last logged, per project

    # --- health --------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while the last successful cycle finished within two intervals."""
        since = None if self.last_success is None else time.monotonic() - self.last_success
        ok = since is not None and since <= 2 * self.settings.interval
        return ok, {
            "status": "ok" if ok else "unhealthy",
            "cycles": self.cycles,
            "interval_seconds": self.settings.interval,
            "last_success": self.last_success_at,
            "seconds_since_success": None if since is None else round(since, 3),
            "last_error": self.last_error,
            "roles": self.roles(),
        }

    def roles(self) -> dict[str, str]:
        """Each target's role in this replica: ``leader`` (records the history, heals) or
        ``standby``."""
        return {
            label: "leader" if self._leads(place) else "standby"
            for label, place in self._places.items()
        }

    # --- the process ---------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped (or one cycle with ``once``); the process's exit code."""
        return interrupts.run(self._main())

    async def _main(self) -> int:
        # Configuration, credentials and manifests must be sound at start-up (exit 1 if not);
        # later, a problem fails one cycle and the next one tries again.
        self._run = self._open_run(self._load())
        self._leadership = runs.Leadership(
            self._run.store(),
            "watch --self-heal" if self.settings.self_heal else "watch",
            hold_off=2 * self.settings.leader_poll,
        )
        self._track(self._run)
        server: MetricsServer | None = None
        if self.settings.metrics_addr:
            server = MetricsServer(
                self.settings.metrics_addr, self.metrics.exposition, CONTENT_TYPE, self.health
            )
            server.start()
        self._announce(server)
        poller: asyncio.Task[None] | None = None
        try:
            with interrupts.graceful(self._on_stop):
                await self._elect()
                if not self.settings.once:
                    poller = asyncio.create_task(self._poll())
                return await self._loop()
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            # Give the leadership back: a standby takes over at its next claim.
            with contextlib.suppress(ReconcilerError):
                self._leadership.close()
            if server is not None:
                server.stop()
            log.info("stopped after %d cycle(s)", self.cycles, extra={"event": "stopped"})

    async def _loop(self) -> int:
        while not self._stop.is_set():
            started = time.monotonic()
            self._cycle = asyncio.create_task(self.cycle())
            try:
                outcome = await self._cycle
            except asyncio.CancelledError:  # a second stop, or the grace period ran out
                log.warning("the cycle in progress was abandoned", extra={"event": "abandoned"})
                return EXIT_INTERRUPTED if self.settings.once else 0
            finally:
                self._cycle = None
            if self.settings.once:
                return EXIT_INTERRUPTED if self._stop.is_set() else outcome.exit_code
            wait = self.settings.interval * (1 + random.uniform(0, self.settings.jitter))
            remaining = started + wait - time.monotonic()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), remaining)
        return 0

    def _on_stop(self, stop: interrupts.Stopped) -> None:
        """The first SIGTERM/SIGINT: start nothing new; a cycle under way gets ``grace`` seconds
        for its requests in flight (a second signal abandons them at once)."""
        self._stop.set()
        self._cancel.set()
        if self._cycle is not None:
            log.warning(
                "%s received: sending nothing new, waiting up to %s for requests in flight "
                "(again to abandon them)",
                stop.cause,
                format_duration(self.settings.grace),
                extra={"event": "stopping", "signal": stop.cause},
            )
            asyncio.get_running_loop().call_later(self.settings.grace, self._abandon)
        else:
            log.info("%s received: stopping", stop.cause, extra={"event": "stopping"})

    def _abandon(self) -> None:
        if self._cycle is not None and not self._cycle.done():
            self._cycle.cancel()

    # --- leadership ----------------------------------------------------------------------------

    def _leads(self, place: Place) -> bool:
        return self._leadership is None or self._leadership.leads(place)

    def _track(self, run: runs.Run) -> None:
        """Watch the projects of ``run``'s targets (a reloaded configuration may change them);
        a new one stands by until claimed."""
        self._places = {t.label: t.session.place for t in run.targets if t.session is not None}
        for label, place in self._places.items():
            self.metrics.role(label, self._leads(place))
            self.metrics.track(label, runs.FALLBACK_REASONS)

    async def _poll(self) -> None:
        """Every ``leader_poll`` seconds: the leader confirms its lease, a standby claims."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.leader_poll)
            if self._stop.is_set():
                return
            try:
                await self._elect()
            except Exception:  # a bug must not end the polling silently
                log.debug("leadership poll failed", exc_info=True)

    async def _elect(self, places: Collection[Place] | None = None) -> list[str]:
        """Confirm or claim the leadership of ``places`` (default: every watched project) and
        say what changed; the errors of a state that could not be asked."""
        if self._leadership is None:
            return []
        wanted = list(dict.fromkeys(self._places.values() if places is None else places))
        async with self._electing:
            standings = await asyncio.to_thread(self._settle, wanted)
        return [error for standing in standings if (error := self._report(standing))]

    def _settle(self, places: list[Place]) -> list[runs.Standing]:
        """(In a worker thread.)  Give up the projects no longer watched, then settle ``places``."""
        assert self._leadership is not None
        watched = set(self._places.values())
        for place in self._leadership.held:
            if place not in watched:
                with contextlib.suppress(ReconcilerError):
                    self._leadership.release(place)
        return self._leadership.settle(places)

    def _report(self, standing: runs.Standing) -> str | None:
        """Set the leader gauges and log a change of role; the state's error, if any."""
        labels = [label for label, place in self._places.items() if place == standing.place]
        for label in labels:
            self.metrics.role(label, standing.leader)
        endpoint, project_id = standing.place
        names = ", ".join(labels) or project_id
        where = {"targets": labels, "project_id": project_id, "endpoint": endpoint}
        if standing.error is not None:
            if self._claim_errors.get(standing.place) != standing.error:
                log.warning(
                    "cannot claim the leadership of target %s: %s",
                    names,
                    standing.error,
                    extra={"event": "leader-error", "error": standing.error, **where},
                )
            self._claim_errors[standing.place] = standing.error
            return standing.error
        self._claim_errors.pop(standing.place, None)
        if standing.changed and standing.leader:
            self._leader_seen.pop(standing.place, None)
            log.info(
                "leading target %s (project %s at %s): this replica records the drift history%s",
                names,
                project_id,
                endpoint,
                " and heals" if self.settings.self_heal else "",
                extra={"event": "leader-elected", **where},
            )
        elif standing.changed:
            log.warning(
                "stepped down as the leader of target %s: %s; standing by (no history, no "
                "heals), claiming again in %s at the earliest",
                names,
                standing.lost,
                format_duration(2 * self.settings.leader_poll),
                extra={"event": "leader-lost", "reason": standing.lost, **where},
            )
        elif standing.holder is not None:
            self._log_standby(names, standing.place, standing.holder, where)
        return None

    def _log_standby(
        self, names: str, place: Place, holder: LockHolder, where: dict[str, Any]
    ) -> None:
        """Say who leads, once per leader."""
        who = holder.describe()
        if self._leader_seen.get(place) == who:
            return
        self._leader_seen[place] = who
        log.info(
            "standing by for target %s: %s leads it",
            names,
            who,
            extra={"event": "standby", "leader": who, **where},
        )

    def _open_run(self, loaded: Sequence[LoadedManifest]) -> runs.Run:
        return runs.open_run(
            self.options, self.settings.paths, loaded=loaded, on_answer=self._answered
        )

    def _answered(self, api: str, code: str) -> None:
        self.requests += 1
        self.metrics.request(api, code)

    def _announce(self, server: MetricsServer | None) -> None:
        assert self._run is not None
        targets = [
            f"{t.label} (project {t.session.target.project_id} at {t.session.target.endpoint})"
            if t.session
            else t.label
            for t in self._run.targets
        ]
        where = f"; metrics on http://{server.host}:{server.port}/metrics" if server else ""
        log.info(
            "watching %s for %s %s%s; self-heal %s",
            ", ".join(self.settings.paths),
            ", ".join(targets),
            "once (--once)"
            if self.settings.once
            else f"every {format_duration(self.settings.interval)}",
            where,
            "on" if self.settings.self_heal else "off",
            extra={
                "event": "started",
                "targets": [t.label for t in self._run.targets],
                "interval_seconds": self.settings.interval,
                "self_heal": self.settings.self_heal,
                "metrics_port": server.port if server else None,
            },
        )

    # --- one cycle -----------------------------------------------------------------------------

    async def cycle(self) -> CycleOutcome:
        """Load, compare, record, heal; never raises for an expected failure."""
        self.cycles += 1
        outcome = CycleOutcome(self.cycles, ok=False)
        started = time.monotonic()
        sent = self.requests
        try:
            run = self._open_run(await asyncio.to_thread(self._load))
            self._track(run)
            await self._elect()
            report, outcome.reads = await self.reads.cycle(
                run, parallelism=self.settings.parallelism, cancel=self._cancel
            )
            self._log_reads(outcome.reads)
            outcome.report = report
            self.metrics.observe_report(report)
            # The report holds the targets in the run's order.
            checked = [
                (target, project)
                for target, project in zip(run.targets, report.projects, strict=True)
                if project.error is None and target.session is not None
            ]
            # Only the leader of a project records its history and heals it: confirm (or
            # claim) just before.
            state_errors = await self._elect([t.opened().place for t, _ in checked])
            leading = [(t, p) for t, p in checked if self._leads(t.opened().place)]
            if leading:
                await self._record_and_heal(run, leading, outcome.heal)
            failed = [
                f"target {p.target}: {p.error}" for p in report.projects if p.error is not None
            ]
            failed += state_errors
            outcome.ok = not failed
            if failed:
                outcome.error = "; ".join(failed)
        except ReconcilerError as exc:
            outcome.error = str(exc)
        except Exception as exc:  # a bug must not end a service; say what it was
            log.debug("cycle %d failed", self.cycles, exc_info=True)
            outcome.error = f"unexpected {type(exc).__name__}: {exc}"
        outcome.duration = time.monotonic() - started
        outcome.requests = self.requests - sent
        finished = time.time()
        self.metrics.cycle_finished(outcome.duration, outcome.ok, finished, outcome.requests)
        self.metrics.healed(outcome.heal.elements())
        if outcome.ok:
            self.last_success = time.monotonic()
            self.last_success_at = now_rfc3339()
            self.last_error = None
        else:
            self.last_error = outcome.error
        self._log_cycle(outcome)
        return outcome

    def _log_reads(self, reads: Sequence[runs.TargetRead]) -> None:
        """Count each target's read; say why a full read replaced an incremental one."""
        for read in reads:
            fallback = read.reason if read.reason in runs.FALLBACK_REASONS else None
            self.metrics.read(read.target, read.kind, fallback)
            if fallback is not None:
                log.warning(
                    "target %s: reading the whole project: %s",
                    read.target,
                    read.detail or read.reason,
                    extra={
                        "event": "full-read",
                        "target": read.target,
                        "reason": read.reason,
                        "detail": read.detail,
                    },
                )
            elif read.reason == "resync":
                log.info(
                    "target %s: full resync (every %s)",
                    read.target,
                    format_duration(self.settings.resync),
                    extra={"event": "full-read", "target": read.target, "reason": "resync"},
                )

    async def _record_and_heal(
        self,
        run: runs.Run,
        leading: Sequence[tuple[runs.TargetRun, ProjectDrift]],
        counts: Counter[str],
    ) -> None:
        """Record the history of the projects this replica leads and, with self-heal, heal
        them, confirming the lease before each heal."""
        with run.store() as store:
            history = store.history
            for target, project in leading:
                self._record(history, project, target.manifests)
            if not self.settings.self_heal or self._stop.is_set():
                return
            self.backoff.forget_except({a.asset_id for _, p in leading for a in _drifted(p)})
            for target, project in leading:
                session = target.opened()
                await self._elect([session.place])
                if self._leads(session.place) and not self._stop.is_set():
                    await self._heal(history, project, session, target.manifests, counts)

    def _load(self) -> list[LoadedManifest]:
        """The manifests, parsed again only when a file was added, removed or changed."""
        files, _problems = discover(list(self.settings.paths))
        signature = tuple(_stamp(path) for path in files)
        if self._manifests is not None and self._manifests[0] == signature:
            return self._manifests[1]
        loaded = load_manifests([Path(p) for p in self.settings.paths])
        if self._manifests is not None:
            log.info(
                "manifests changed: %d loaded", len(loaded), extra={"event": "manifests-reloaded"}
            )
        self._manifests = (signature, loaded)
        return loaded

    def _record(
        self, history: History, project: ProjectDrift, loaded: Sequence[LoadedManifest]
    ) -> None:
        _, digests = self.reads.declared(loaded)  # worked out by the cycle's reads
        observations = [
            Observation(
                asset_id=asset.asset_id,
                status=asset.status.value,
                drifted=asset.status in DRIFT_STATUSES,
                fields=tuple(f.path for f in asset.fields),
                manifest_digest=digests.get(asset.asset_id),
            )
            for asset in project.assets
        ]
        project_id = project.project_id or ""
        changes = history.record_cycle(project_id, observations, now_rfc3339())
        project.add_history(history.open_episodes(project_id))
        for episode in changes.opened:
            log.info(
                "asset %s %s%s",
                episode.asset_id,
                episode.status,
                f": {', '.join(episode.fields)}" if episode.fields else "",
                extra={
                    "event": "drift-opened",
                    "asset_id": episode.asset_id,
                    "status": episode.status,
                    "fields": list(episode.fields),
                },
            )
        for episode in changes.resolved:
            self._log_resolved(episode.asset_id, episode.resolution, episode.cycles)

    def _log_resolved(self, asset_id: str, how: Resolution | None, cycles: int) -> None:
        log.info(
            "asset %s is back in sync (%s) after %d check(s)",
            asset_id,
            how.value if how else "resolved",
            cycles,
            extra={
                "event": "drift-resolved",
                "asset_id": asset_id,
                "resolution": how.value if how else None,
                "cycles": cycles,
            },
        )

    async def _heal(
        self,
        history: History,
        project: ProjectDrift,
        session: runs.Session,
        loaded: Sequence[LoadedManifest],
        counts: Counter[str],
    ) -> None:
        """Apply the drifted assets back, except those still in their backoff."""
        drifted = [a.asset_id for a in _drifted(project)]
        now = time.monotonic()
        ready = [a for a in drifted if self.backoff.allowed(a, now)]
        if len(ready) < len(drifted):
            counts["backoff"] += len(drifted) - len(ready)
        if not ready:
            return
        run = await runs.heal(
            session,
            loaded,
            ready,
            parallelism=self.settings.parallelism,
            cancel=self._cancel,
        )
        if run.locked is not None:
            counts["locked"] += len(ready)
            log.warning(
                "self-heal skipped this cycle: %s",
                run.locked,
                extra={"event": "heal-locked", "holder": run.locked.holder.describe()},
            )
            return
        if run.refused is not None:
            counts["threshold"] += len(ready)
            log.warning(
                "self-heal stopped: %s. Nothing was sent; it resumes when the drift falls "
                "below the threshold (or run `reconciler apply --force`).",
                crossing_message(run.refused),
                extra={"event": "heal-refused", "reason": crossing_message(run.refused)},
            )
            return
        for asset in run.violated:  # never healed into a policy violation
            log.warning(
                "self-heal of %s refused: %s",
                asset.asset_id,
                violations_text(asset.violations),
                extra={"event": "heal-policy", "asset_id": asset.asset_id},
            )
        if run.result is None:
            return
        for result in run.result.results:
            if result.outcome is Outcome.NOT_STARTED:
                continue
            if result.ok:
                counts["healed"] += 1
                self.backoff.succeeded(result.asset_id)
                episode = history.resolve(
                    project.project_id or "", result.asset_id, Resolution.SELF_HEAL, now_rfc3339()
                )
                log.info(
                    "asset %s healed",
                    result.asset_id,
                    extra={"event": "healed", "asset_id": result.asset_id},
                )
                if episode is not None:
                    self._log_resolved(result.asset_id, episode.resolution, episode.cycles)
            else:
                counts["failed"] += 1
                delay = self.backoff.failed(result.asset_id, time.monotonic())
                log.warning(
                    "self-heal of %s; next attempt in %s at the earliest",
                    result_line(result),
                    format_duration(delay),
                    extra={
                        "event": "heal-failed",
                        "asset_id": result.asset_id,
                        "outcome": result.outcome.value,
                        "backoff_seconds": delay,
                        "failures": self.backoff.failures(result.asset_id),
                    },
                )

    def _log_cycle(self, outcome: CycleOutcome) -> None:
        fields: dict[str, Any] = {
            "event": "cycle",
            "cycle": outcome.number,
            "result": "success" if outcome.ok else "failure",
            "duration_seconds": round(outcome.duration, 3),
            "requests": outcome.requests,
            "kind": outcome.kind,
        }
        if outcome.report is not None:
            report = outcome.report
            fields.update(
                managed=report.managed,
                drifted=report.count(DriftStatus.DRIFTED),
                missing=report.count(DriftStatus.MISSING),
                blocked=report.count(DriftStatus.BLOCKED),
                errored=report.count(DriftStatus.ERROR),
                unmanaged=report.unmanaged,
            )
        if outcome.heal:
            fields["self_heal"] = dict(outcome.heal)
        if outcome.ok:
            heal = "".join(f", {n} {what}" for what, n in sorted(outcome.heal.items()))
            log.info(
                "cycle %d: %d managed, %d drifted, %d missing, %d blocked, %d error(s)%s in "
                "%.2fs (%s read, %d request(s))",
                outcome.number,
                fields["managed"],
                fields["drifted"],
                fields["missing"],
                fields["blocked"],
                fields["errored"],
                heal,
                outcome.duration,
                outcome.kind or "no",
                outcome.requests,
                extra=fields,
            )
        else:
            fields["error"] = outcome.error
            log.error(
                "cycle %d failed after %.2fs: %s",
                outcome.number,
                outcome.duration,
                outcome.error,
                extra=fields,
            )


def _drifted(project: ProjectDrift) -> list[AssetDrift]:
    """The assets self-heal can put back: those with drifted fields (missing ones cannot be
    created through the update API, blocked ones cannot be updated)."""
    return [a for a in project.assets if a.status is DriftStatus.DRIFTED]


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        info = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), info.st_mtime_ns, info.st_size)
