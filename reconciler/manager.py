"""One run of the engine for a command: target, credentials, manifests, live state, result.

The CLI commands are thin wrappers over these functions, which print nothing: they resolve the
session (configuration file, target, credentials from the environment), load and select the
manifests, read live state through the client, and hand both to the engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.api.auth import Credentials, credentials_from_env
from reconciler.api.client import MetaStudioClient
from reconciler.api.config import ReconcilerConfig, Target, config_path, load_config, resolve_target
from reconciler.engine import planfile
from reconciler.engine.drift import DriftReport, project_drift
from reconciler.engine.plan import Plan
from reconciler.engine.planfile import PlanContext
from reconciler.engine.planner import DEFAULT_PARALLELISM, build_plan, desired_from_loaded
from reconciler.engine.state import DEFAULT_STATE_PATH, WriteOnlyState
from reconciler.errors import ReconcilerError
from reconciler.manifest.loader import LoadedManifest, load_manifests
from reconciler.options import GlobalOptions

log = logging.getLogger(__name__)

DEFAULT_PATHS = ("manifests",)


@dataclass(frozen=True)
class Session:
    """Where a run talks to and as whom; credentials come from the environment only."""

    config: ReconcilerConfig
    target: Target
    credentials: Credentials

    def client(self, parallelism: int = DEFAULT_PARALLELISM) -> MetaStudioClient:
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
    parallelism: int = DEFAULT_PARALLELISM,
    progress: Callable[[str], None] | None = None,
) -> tuple[Plan, PlanContext]:
    """Plan the manifests under ``paths`` against the selected target; raises on setup errors."""
    say = progress or (lambda _message: None)
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    session = open_session(options)
    target = session.target
    say("Loading manifests...")
    loaded = load_selected(session, paths, filters)
    desired = [desired_from_loaded(item) for item in loaded]
    digests = {
        item.manifest.metadata.asset_id: planfile.digest(
            {
                "asset_id": item.manifest.metadata.asset_id,
                "app_user_id": item.manifest.metadata.app_user_id,
                "spec": item.desired,
            }
        )
        for item in loaded
    }
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
    say(f"Planned {len(plan.assets)} assets in {time.monotonic() - started:.1f}s.")
    context = PlanContext(
        target=target.name,
        project_id=target.project_id,
        endpoint=target.endpoint,
        manifest_digests=digests,
    )
    return plan, context


async def make_drift(
    options: GlobalOptions,
    paths: Sequence[str],
    *,
    include_unmanaged: bool = False,
    parallelism: int = DEFAULT_PARALLELISM,
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
    options: GlobalOptions, asset_ids: Sequence[str], *, parallelism: int = DEFAULT_PARALLELISM
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
