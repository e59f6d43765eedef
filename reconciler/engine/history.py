"""Drift history: since when an asset has differed from its manifest, how often, and how it ended.

``reconciler watch`` records every cycle; ``reconciler drift`` only reads, to say "drifted
since ...".  History is a list of *episodes* per (project, asset): an episode opens the first
cycle an asset is seen drifted (or missing, or blocked), counts the cycles it stays so and the
fields involved, and closes the first cycle it is seen in sync, with the way it was resolved:

* ``self-heal``: the watcher applied the manifest back (recorded when the write is verified);
* ``manifest-change``: the manifest changed since the asset was last seen drifted, or no longer
  declares the asset;
* ``out-of-band``: the manifest did not change, so live was put back outside this tool (the
  console, another script, or a ``reconciler apply``).

An asset that cannot be compared (status ``error``) neither opens nor closes an episode: nothing is
known about it.

This module holds the data and the decisions only (:func:`decide_cycle`); the state store
(:mod:`reconciler.state`) keeps the episodes and persists what a cycle decided, so every backend
records a cycle the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace


class Resolution(enum.StrEnum):
    SELF_HEAL = "self-heal"
    MANIFEST_CHANGE = "manifest-change"
    OUT_OF_BAND = "out-of-band"


@dataclass(frozen=True)
class Observation:
    """What one cycle saw of one managed asset."""

    asset_id: str
    status: str  # a DriftStatus value
    drifted: bool  # drifted, missing or blocked
    fields: tuple[str, ...] = ()
    manifest_digest: str | None = None


@dataclass(frozen=True)
class Episode:
    """One stretch of cycles during which an asset differed from its manifest."""

    project_id: str
    asset_id: str
    status: str
    first_seen: str  # RFC 3339, UTC
    last_seen: str
    cycles: int
    fields: tuple[str, ...]
    manifest_digest: str | None
    resolved_at: str | None = None
    resolution: Resolution | None = None

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def closed(self, how: Resolution, now: str) -> Episode:
        """This episode resolved ``how`` at ``now``."""
        return replace(self, resolved_at=now, resolution=how)


@dataclass(frozen=True)
class CycleChanges:
    """What one recorded cycle changed in the history.

    ``opened`` are new episodes; ``continued`` are open episodes seen drifted again, with this
    cycle's status, fields, digest, ``last_seen`` and one more cycle; ``resolved`` are the open
    episodes this cycle closed.  A store inserts the first and updates the open episode of each
    asset of the other two.
    """

    opened: tuple[Episode, ...] = ()
    resolved: tuple[Episode, ...] = ()
    continued: tuple[Episode, ...] = ()


def decide_cycle(
    project_id: str,
    current: Mapping[str, Episode],
    observations: Sequence[Observation],
    now: str,
) -> CycleChanges:
    """What one cycle changes, given the project's open episodes by asset id (``current``) and
    what the cycle saw of every asset it manages.

    Open episodes of assets the cycle no longer manages are resolved as manifest changes.
    """
    opened: list[Episode] = []
    continued: list[Episode] = []
    resolved: list[Episode] = []
    seen: set[str] = set()
    for obs in observations:
        seen.add(obs.asset_id)
        episode = current.get(obs.asset_id)
        if obs.drifted and episode is None:
            fields = tuple(sorted(set(obs.fields)))
            opened.append(
                Episode(
                    project_id, obs.asset_id, obs.status, now, now, 1, fields, obs.manifest_digest
                )
            )
        elif obs.drifted and episode is not None:
            continued.append(
                replace(
                    episode,
                    status=obs.status,
                    last_seen=now,
                    cycles=episode.cycles + 1,
                    fields=tuple(sorted({*episode.fields, *obs.fields})),
                    manifest_digest=obs.manifest_digest,
                )
            )
        elif episode is not None and obs.status == "in-sync":
            changed = (
                obs.manifest_digest is not None
                and episode.manifest_digest is not None
                and obs.manifest_digest != episode.manifest_digest
            )
            how = Resolution.MANIFEST_CHANGE if changed else Resolution.OUT_OF_BAND
            resolved.append(episode.closed(how, now))
    resolved.extend(
        episode.closed(Resolution.MANIFEST_CHANGE, now)
        for asset_id, episode in current.items()
        if asset_id not in seen
    )
    return CycleChanges(tuple(opened), tuple(resolved), tuple(continued))
