"""Assemble a Plan from desired assets and the live JSON read for them: pure, no I/O.

The reads happen in :mod:`reconciler.live` (bulk fetch, concurrency, error classification),
which hands over each chunk of live JSON as it arrives and, at the end, a :class:`ReadFailure`
for each asset that could not be read.  :class:`PlanBuilder` diffs each chunk on arrival, so the
CPU work overlaps with the paced reads, and lays the plan out in manifest order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from reconciler.api.rules import manifest_rule
from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.freshness import missing_for_diff
from reconciler.engine.guardrails import Rules
from reconciler.engine.plan import Action, AssetPlan, Plan
from reconciler.engine.records import Record


@dataclass(frozen=True)
class ReadFailure:
    """Why one asset's live state could not be read: the error text and the service's code."""

    message: str
    error_code: str | None = None


class DeclaredLike(Protocol):
    """What :func:`desired_from_loaded` reads of a valid manifest
    (``reconciler.manifest.loader.LoadedManifest`` or its plain ``Declared`` view)."""

    @property
    def asset_id(self) -> str: ...
    @property
    def app_user_id(self) -> str | None: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def desired(self) -> dict[str, Any]: ...
    @property
    def source(self) -> str: ...
    @property
    def ignore(self) -> Sequence[str]: ...


def desired_from_loaded(loaded: DeclaredLike) -> Desired:
    """The engine's plain input for one valid manifest."""
    return Desired(
        asset_id=loaded.asset_id,
        desired=dict(loaded.desired),
        app_user_id=loaded.app_user_id,
        source=loaded.source,
        name=loaded.desired.get("asset_name"),
        labels=dict(loaded.labels),
        own_ignore=(manifest_rule(loaded.ignore),) if loaded.ignore else (),
    )


def with_rules(desired: Sequence[Desired], rules: Rules) -> list[Desired]:
    """``desired`` under its target's ignore and policy rules (unchanged when it has none)."""
    if not rules.ignore and not rules.policies:
        return list(desired)
    return [replace(item, rules=rules) for item in desired]


class PlanBuilder:
    """Diff chunks of live state as they arrive, then lay out the plan in manifest order.

    Desired assets may be added while live chunks are already arriving (:meth:`add` before the
    live JSON of those assets is handed over).  Only the resulting ``AssetPlan`` is kept, with
    the live fingerprint for staleness checks; the live JSON itself is not.
    """

    def __init__(
        self,
        desired: Sequence[Desired] = (),
        *,
        records: Mapping[str, Record] | None = None,
        project_id: str,
    ) -> None:
        self.desired: list[Desired] = list(desired)
        self.records: dict[str, Record] = dict(records or {})
        self.project_id = project_id
        self._diffed: dict[int, AssetPlan] = {}
        # Assets whose list row lacked a managed field or block: to be read whole, then diffed.
        self.incomplete: list[Desired] = []

    def _diff(self, item: Desired, live: Mapping[str, Any] | None, read: str) -> None:
        self._diffed[id(item)] = diff_asset(
            item,
            live,
            write_only_record=self.records.get(item.asset_id),
            project_id=self.project_id,
            live_read=read,
        )

    def add(self, desired: Sequence[Desired], records: Mapping[str, Record]) -> None:
        """More desired assets (in manifest order), and their write-only records."""
        self.desired.extend(desired)
        self.records.update(records)

    def diff_chunk(self, chunk: Sequence[Desired], live: Mapping[str, Mapping[str, Any]]) -> None:
        """Plan the assets of one chunk against their live JSON.

        A row that lacks a managed field or block is not diffed: a body built from it could
        wipe the rest of a block.  It waits in :attr:`incomplete` for a whole read, and so does
        an asset the list did not return: it is missing only when ShowAsset says the service
        does not know it (design.md 3.13), not because a list left it out.
        """
        for item in chunk:
            row = live.get(item.asset_id)
            if row is None or missing_for_diff(item.desired, row):
                self.incomplete.append(item)
            else:
                self._diff(item, row, "list")

    def diff_shown(self, live: Mapping[str, Mapping[str, Any]]) -> None:
        """Plan the :attr:`incomplete` assets against their ShowAsset reads (absent: missing,
        unless the read failed: :meth:`plan` reports those)."""
        for item in self.incomplete:
            self._diff(item, live.get(item.asset_id), "show")

    def plan(
        self,
        failed: Mapping[str, ReadFailure],
        *,
        target_name: str | None,
        endpoint: str | None,
        created_at: str,
    ) -> Plan:
        """Every desired asset, in manifest order: its diff, or an error row for a failed read."""
        assets = [
            read_error(item, failed[item.asset_id])
            if item.asset_id in failed or id(item) not in self._diffed
            else self._diffed[id(item)]
            for item in self.desired
        ]
        return Plan(
            assets=assets,
            target=target_name,
            project_id=self.project_id,
            endpoint=endpoint,
            created_at=created_at,
        )


def read_error(item: Desired, failure: ReadFailure) -> AssetPlan:
    """The error row of an asset whose live state could not be read."""
    return AssetPlan(
        asset_id=item.asset_id,
        action=Action.ERROR,
        name=item.name or item.desired.get("asset_name"),
        source=item.source,
        app_user_id=item.app_user_id,
        errors=[f"could not read the live asset: {failure.message}"],
        error_code=failure.error_code,
    )
