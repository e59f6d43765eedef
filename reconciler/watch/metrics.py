"""The Prometheus metrics of ``reconciler watch`` (names documented in docs/watch.md).

Each watcher has its own registry, so a process (or a test) may run several; only what this
registry holds is exported, plus the client library's standard process metrics.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.process_collector import ProcessCollector

from reconciler.engine.drift import DriftReport, DriftStatus

CONTENT_TYPE = CONTENT_TYPE_LATEST
HEAL_RESULTS = ("healed", "failed", "backoff", "threshold", "locked")
# The *_created series (one per label set) double the output and no dashboard uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]
# Cycles read a whole project: from well under a second (a few assets) to minutes (10,000).
CYCLE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, float("inf"))
# An idle incremental cycle sends one request; a full read of 100,000 assets about 1,000.
REQUEST_BUCKETS = (1, 2, 3, 5, 10, 25, 100, 250, 1000, 2500, 10000, float("inf"))
READ_KINDS = ("full", "incremental")


class WatchMetrics:
    """Gauges per target (the leader gauge included), counters of requests and heals, the
    cycle histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.managed = Gauge(
            "reconciler_assets_managed",
            "Assets a manifest declares and the project has.",
            ["target"],
            registry=r,
        )
        self.drifted = Gauge(
            "reconciler_assets_drifted",
            "Managed assets whose live state differs from the manifest.",
            ["target"],
            registry=r,
        )
        self.missing = Gauge(
            "reconciler_assets_missing",
            "Assets a manifest declares that the project does not have.",
            ["target"],
            registry=r,
        )
        self.blocked = Gauge(
            "reconciler_assets_blocked",
            "Managed assets in a state that does not allow updates.",
            ["target"],
            registry=r,
        )
        self.errors = Gauge(
            "reconciler_assets_errored",
            "Managed assets that could not be compared with their manifest.",
            ["target"],
            registry=r,
        )
        self.unmanaged = Gauge(
            "reconciler_assets_unmanaged",
            "Assets of the project that no manifest declares.",
            ["target"],
            registry=r,
        )
        self.cycle_duration = Histogram(
            "reconciler_cycle_duration_seconds",
            "Wall time of one watch cycle (load, read, compare, heal).",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.cycles = Counter(
            "reconciler_cycles",
            "Watch cycles by result (success, failure).",
            ["result"],
            registry=r,
        )
        self.last_success = Gauge(
            "reconciler_last_success_timestamp_seconds",
            "Unix time at which the last successful cycle finished.",
            registry=r,
        )
        self.requests = Counter(
            "reconciler_requests",
            "Answers from MetaStudio by API (list, show, update) and HTTP status "
            "('error' when no answer came).",
            ["api", "code"],
            registry=r,
        )
        self.self_heal = Counter(
            "reconciler_self_heal",
            "Self-heal outcomes per asset (healed, failed, backoff, threshold, locked, changed).",
            ["result"],
            registry=r,
        )
        self.leader = Gauge(
            "reconciler_watch_leader",
            "1 while this replica is the target's active watcher (records the drift history, "
            "heals), 0 while it stands by.",
            ["target"],
            registry=r,
        )
        self.cycle_requests = Histogram(
            "reconciler_cycle_requests",
            "Requests sent to MetaStudio by one watch cycle (reads and heals, retries included).",
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.reads = Counter(
            "reconciler_project_reads",
            "Reads of a target's project by kind: full (every asset) or incremental (the "
            "assets changed since the last read).",
            ["target", "kind"],
            registry=r,
        )
        self.fallbacks = Counter(
            "reconciler_read_fallbacks",
            "Full reads made because the incremental read could not be trusted, by reason.",
            ["target", "reason"],
            registry=r,
        )
        # Every series exists from the start, so that rate() and absent() work from the
        # first scrape.
        for result in ("success", "failure"):
            self.cycles.labels(result)
        for result in HEAL_RESULTS:
            self.self_heal.labels(result)

    def observe_report(self, report: DriftReport) -> None:
        """Set the per-target gauges from one cycle's drift report."""
        for project in report.projects:
            target = project.target or ""
            self.managed.labels(target).set(project.managed)
            self.drifted.labels(target).set(project.count(DriftStatus.DRIFTED))
            self.missing.labels(target).set(project.count(DriftStatus.MISSING))
            self.blocked.labels(target).set(project.count(DriftStatus.BLOCKED))
            self.errors.labels(target).set(project.count(DriftStatus.ERROR))
            self.unmanaged.labels(target).set(len(project.unmanaged))

    def track(self, target: str, reasons: Iterable[str]) -> None:
        """Create the target's read and fallback series (at 0)."""
        for kind in READ_KINDS:
            self.reads.labels(target, kind)
        for reason in reasons:
            self.fallbacks.labels(target, reason)

    def read(self, target: str, kind: str, fallback: str | None) -> None:
        """One read of a target's project; ``fallback``: why a full read replaced an
        incremental one."""
        self.reads.labels(target, kind).inc()
        if fallback is not None:
            self.fallbacks.labels(target, fallback).inc()

    def role(self, target: str, leader: bool) -> None:
        self.leader.labels(target).set(1 if leader else 0)

    def cycle_finished(
        self, seconds: float, ok: bool, finished_at: float, requests: int = 0
    ) -> None:
        self.cycle_duration.observe(seconds)
        self.cycle_requests.observe(requests)
        self.cycles.labels("success" if ok else "failure").inc()
        if ok:
            self.last_success.set(finished_at)

    def request(self, api: str, code: str) -> None:
        self.requests.labels(api, code).inc()

    def healed(self, results: Iterable[str]) -> None:
        for result in results:
            self.self_heal.labels(result).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
