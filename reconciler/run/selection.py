"""Which manifests a run covers and which target each belongs to: one routine for every command.

``plan``, ``apply MANIFESTS`` and ``drift`` feed their manifests through a :class:`Selection` as
the load yields them (:mod:`reconciler.run.streamed`); ``watch`` feeds the manifests it loaded
itself (:func:`reconciler.run.targets.open_run`).  Both get the same owners, the same checks in
the same order, and the same messages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.api.config import ReconcilerConfig
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.manifest.loader import Declared, LoadedManifest
from reconciler.options import GlobalOptions

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Placed:
    """A manifest's place in the run: its target, and whether the filters choose it."""

    target: str | None
    chosen: bool


class Selection:
    """The run's view of its manifests, one at a time: :meth:`place` each, then :meth:`finish`.

    Without ``--target`` the run covers every target the manifests name; ``--target`` (given
    one or more times) narrows it to those targets, each covered even when no manifest names it.
    """

    def __init__(self, options: GlobalOptions, config: ReconcilerConfig, filters: Filters) -> None:
        self.options = options
        self.config = config
        self.filters = filters
        self.seen = 0
        self.skipped = 0  # manifests of targets other than the chosen ones
        self.declared: dict[str | None, int] = {}  # per target, before --asset / --selector
        self._asset_ids: set[str] = set()
        self._refused: ConfigError | None = None  # raised once every manifest was placed

    @property
    def refused(self) -> bool:
        """A manifest named a target the configuration does not have."""
        return self._refused is not None

    def known_targets(self) -> list[str | None]:
        """The targets a run covers whatever its manifests say: each ``--target``; or the one
        target of a configuration with at most one, that every manifest must name or follow.
        Empty when the run learns its targets from the manifests."""
        options, config = self.options, self.config
        if options.targets:
            return list(options.targets)
        if not config.targets and config.default_target is None:
            return [None]  # flags and the environment only
        if len(config.targets) == 1 and config.implicit_target in config.targets:
            return [config.implicit_target]
        return []

    def place(self, item: LoadedManifest | Declared) -> Placed | None:
        """The manifest's place; None when the run skips it (another ``--target``) or its
        ``metadata.target`` names no target (refused by :meth:`finish`)."""
        self.seen += 1
        self._asset_ids.add(item.asset_id)
        try:
            owner = self._owner(item)
        except ConfigError as exc:
            self._refused = self._refused or exc
            return None
        if self.options.targets and owner not in self.options.targets:
            self.skipped += 1
            return None
        self.declared[owner] = self.declared.get(owner, 0) + 1
        return Placed(owner, self.filters.matches(item))

    def owner_of(self, target: str | None) -> str | None:
        """The target of a document whose ``metadata.target`` is ``target`` (unchecked: for
        documents only scanned, as ``--changed-since`` scans every manifest)."""
        return target or self.config.implicit_target or self.options.target

    def _owner(self, loaded: LoadedManifest | Declared) -> str | None:
        """``metadata.target``, else the configuration's implicit one, else the single
        ``--target`` given (a manifest without a target follows the chosen one)."""
        config = self.config
        if loaded.target:
            if loaded.target not in config.targets:
                known = ", ".join(sorted(config.targets)) or "none defined"
                where = config.path or "reconciler.yaml (none found)"
                raise ConfigError(
                    f"{loaded.file}:{loaded.line}: metadata.target: no target named "
                    f"{loaded.target!r} in {where} (targets: {known})"
                )
            return loaded.target
        return config.implicit_target or self.options.target

    def finish(self) -> None:
        """Once every manifest was placed: the refusals, in this order, and the log line of the
        manifests skipped for another target."""
        if self._refused is not None:
            raise self._refused
        if self.skipped:
            level = logging.WARNING if self.skipped == self.seen else logging.INFO
            log.log(
                level,
                "skipped %d manifest%s of targets other than %s",
                self.skipped,
                "" if self.skipped == 1 else "s",
                ", ".join(self.options.targets),
            )
        unknown = [a for a in self.filters.asset_ids if a not in self._asset_ids]
        if unknown:
            raise ReconcilerError(f"--asset {', '.join(unknown)}: no manifest declares this asset")

    def ordered(self, names: Sequence[str | None]) -> list[str | None]:
        """The targets in the order of ``--target``, else of the configuration."""
        order: list[str | None] = [*self.options.targets] or [None, *self.config.targets]
        return sorted(names, key=lambda n: order.index(n) if n in order else len(order))

    def one_target_flags(self) -> list[str]:
        """The options given that make sense for one target only."""
        options = self.options
        flags = (
            ("--endpoint", options.endpoint),
            ("--project-id", options.project_id),
            ("--region", options.region),
        )
        return [flag for flag, value in flags if value]

    def check_targets(self, labels: Sequence[str], covers: str = "this run covers") -> None:
        """Refuse one-target options when the run covers several targets."""
        given = self.one_target_flags()
        if len(labels) > 1 and given:
            raise ConfigError(
                f"{', '.join(given)} applies to one target, but {covers} "
                f"{len(labels)} ({', '.join(labels)}); narrow it with --target"
            )
