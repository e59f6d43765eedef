"""The run of manifests already loaded (``watch``): every target with its manifests and session.

``watch`` loads and reloads its manifests itself (only the files that changed); each cycle it
opens a :class:`Run` of them through the same :class:`~reconciler.run.selection.Selection` as the
streamed commands, so that owners, checks and messages are the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from reconciler.api.client import AnswerObserver
from reconciler.api.config import ReconcilerConfig, config_path, load_config
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.manifest.loader import LoadedManifest, load_manifests
from reconciler.options import GlobalOptions
from reconciler.run.selection import Filters, Selection
from reconciler.run.session import Session, TargetNamed, open_config_store, open_target
from reconciler.state import StateStore

T = TypeVar("T")


@dataclass
class TargetRun(TargetNamed):
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

    @property
    def sessions(self) -> list[Session | None]:
        return [target.session for target in self.targets]

    @property
    def several(self) -> bool:
        """More than one target: one target's failure is reported under it, not raised."""
        return len(self.targets) > 1

    def store(self) -> StateStore:
        """The run's state store (write-only records, locks, drift history)."""
        return open_config_store(self.config)

    async def each(
        self,
        target: TargetRun,
        work: Callable[[Session], Awaitable[T]],
        failed: Callable[[str, str | None, str | None], T],
    ) -> T:
        """``work`` on the target's session; in a run over several targets, a failure of this
        target becomes ``failed(message, project_id, endpoint)`` instead of ending the run."""
        try:
            return await work(target.opened())
        except ReconcilerError as exc:
            if not self.several:
                raise
            return failed(str(exc), *target.place)


def open_run(
    options: GlobalOptions,
    paths: Sequence[str],
    filters: Filters | None = None,
    *,
    loaded: Sequence[LoadedManifest] | None = None,
    on_answer: AnswerObserver | None = None,
) -> Run:
    """Load and validate every manifest (nothing is sent if one is invalid), group the selected
    ones by target, and open each target's session.

    ``loaded`` are manifests already loaded from ``paths`` (``watch`` reloads only changed
    files); ``on_answer`` sees every answer of every target's client.
    """
    filters = filters or Filters()
    config = load_config(config_path(options))
    if loaded is None:
        loaded = load_manifests([Path(p) for p in paths])
    selection = Selection(options, config, filters)
    groups: dict[str | None, list[LoadedManifest]] = {name: [] for name in options.targets}
    for item in loaded:
        placed = selection.place(item)
        if placed is None:
            continue
        group = groups.setdefault(placed.target, [])
        if placed.chosen:
            group.append(item)
    selection.finish()
    if not groups:
        groups[config.implicit_target] = []
    names = selection.ordered(list(groups))
    selection.check_targets([name or "default" for name in names])
    run = Run(
        config,
        [TargetRun(name, groups[name], declared=selection.declared.get(name, 0)) for name in names],
        filters=filters,
    )
    for target in run.targets:
        try:
            target.session = open_target(options, config, target.name, on_answer)
        except ConfigError as exc:
            if not run.several:
                raise
            target.error = exc
    return run
