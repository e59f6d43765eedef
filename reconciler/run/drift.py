"""``drift`` (and each ``watch`` cycle): every target's manifests compared with its project."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.api.client import MetaStudioClient
from reconciler.api.config import config_path, load_config
from reconciler.constants import PAGE_SIZE, READ_PARALLELISM
from reconciler.engine.diff import Desired
from reconciler.engine.drift import DriftReport, ProjectDrift, project_drift
from reconciler.engine.guardrails import Rules
from reconciler.engine.planner import with_rules
from reconciler.live.fetch import ProjectReads
from reconciler.manifest.loader import LoadedManifest
from reconciler.options import GlobalOptions
from reconciler.run.planfile import digest
from reconciler.run.selection import Filters
from reconciler.run.session import Session, open_config_store
from reconciler.run.streamed import Lane, Streamed


async def make_drift(
    options: GlobalOptions,
    paths: Sequence[str],
    *,
    include_unmanaged: bool = False,
    parallelism: int = READ_PARALLELISM,
) -> DriftReport:
    """Compare each target's manifests with its whole project, every target at once (one bulk
    listing per project gives both the managed assets' live state and the unmanaged ones).
    The listing does not depend on the manifests, so it runs while they load.  Where the drift
    history (recorded by ``watch``, only read here) knows since when an asset differs, the
    report says so."""
    config = load_config(config_path(options))
    streamed = Streamed(DriftKind(), options, config, paths, Filters(), parallelism)
    projects = [pair.result for pair in await streamed.run()]
    report = DriftReport(projects, include_unmanaged=include_unmanaged)
    with open_config_store(config) as store:
        for project in report.projects:
            if project.project_id and project.error is None:
                project.add_history(store.history.open_episodes(project.project_id))
    return report


def manifest_digests(loaded: Sequence[LoadedManifest]) -> dict[str, str]:
    """Per asset, a digest of what its manifest declares (identity, X-App-UserId, spec): the
    drift history tells a manifest change from an out-of-band fix by it."""
    return {
        item.manifest.metadata.asset_id: digest(
            {
                "asset_id": item.manifest.metadata.asset_id,
                "app_user_id": item.manifest.metadata.app_user_id,
                "spec": item.desired,
            }
        )
        for item in loaded
    }


class DriftReads:
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
        ignore = Rules(session.config.ignore_rules(target.name))  # drift judges no policy
        return project_drift(
            with_rules(self.desired, ignore),
            list(read.rows.values()),
            target=target.name,
            project_id=target.project_id,
            endpoint=target.endpoint,
            failed=read.failed,
            missing=read.missing,
        )


class DriftKind:
    """A streamed drift: each target's project compared with its manifests."""

    def reads(self, lane: Lane[Any], client: MetaStudioClient, parallelism: int) -> DriftReads:
        return DriftReads(client, parallelism)

    def loaded(self, lanes: Sequence[Lane[Any]]) -> None:
        return None

    def done(self, lane: Lane[Any], result: ProjectDrift) -> ProjectDrift:
        return result

    def failed(self, lane: Lane[Any], error: str) -> ProjectDrift:
        return unchecked(lane.label, *lane.place, error, len(lane.desired))


def unchecked(
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
