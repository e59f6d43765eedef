"""Build a Plan: bulk-fetch the live assets, diff each one, keep going past per-asset errors.

Live state is read through ``client.fetch`` in chunks of one list page (100 ids) per X-App-UserId,
so a chunk that fails after the client's retries turns only its own assets into error rows.  When
every chunk fails (the service is down, or the credentials are refused) the run fails as a whole
with that error instead of printing the same message once per asset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from reconciler.api.errors import ApiError, CredentialsRejected
from reconciler.engine import safety
from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.plan import Action, AssetPlan, Plan
from reconciler.engine.state import Record
from reconciler.errors import ReconcilerError

CHUNK = 100  # one list page: the API's maximum ``limit``
DEFAULT_PARALLELISM = 8


class LiveSource(Protocol):
    """The part of ``reconciler.api.client.MetaStudioClient`` the planner uses."""

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> Mapping[str, Any]: ...


class RecordSource(Protocol):
    """The part of ``reconciler.engine.state.WriteOnlyState`` the planner uses."""

    def get_many(self, project_id: str, asset_ids: Sequence[str]) -> Mapping[str, Record]: ...


class _Metadata(Protocol):
    @property
    def asset_id(self) -> str: ...
    @property
    def app_user_id(self) -> str | None: ...
    @property
    def labels(self) -> Mapping[str, str] | None: ...


class _Manifest(Protocol):
    @property
    def metadata(self) -> _Metadata: ...


class LoadedManifestLike(Protocol):
    """What :func:`desired_from_loaded` reads from ``reconciler.manifest.loader.LoadedManifest``."""

    @property
    def manifest(self) -> _Manifest: ...
    @property
    def desired(self) -> dict[str, Any]: ...
    @property
    def file(self) -> Any: ...
    @property
    def line(self) -> int: ...
    @property
    def column(self) -> int: ...


def desired_from_loaded(loaded: LoadedManifestLike) -> Desired:
    """The engine's plain input for one loaded manifest."""
    meta = loaded.manifest.metadata
    return Desired(
        asset_id=meta.asset_id,
        desired=dict(loaded.desired),
        app_user_id=meta.app_user_id,
        source=f"{loaded.file}:{loaded.line}:{loaded.column}",
        name=loaded.desired.get("asset_name"),
        labels=dict(meta.labels or {}),
    )


def _chunks(desired: Sequence[Desired]) -> list[list[Desired]]:
    groups: dict[str | None, list[Desired]] = {}
    for item in desired:
        groups.setdefault(item.app_user_id, []).append(item)
    return [ids[i : i + CHUNK] for ids in groups.values() for i in range(0, len(ids), CHUNK)]


def _raw(value: Any) -> dict[str, Any]:
    raw = getattr(value, "raw", value)
    return dict(raw)


ChunkCallback = Callable[[list[Desired], dict[str, dict[str, Any]]], None]


async def fetch_live(
    desired: Sequence[Desired],
    client: LiveSource,
    parallelism: int,
    on_chunk: ChunkCallback | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, ReconcilerError]]:
    """Live raw JSON by asset id, and the error for each asset whose chunk could not be read.

    ``on_chunk(chunk, live_of_chunk)`` runs as soon as a chunk arrives, so CPU work on it
    overlaps with the paced wait for the next pages instead of following all of them.
    """
    slots = asyncio.Semaphore(max(1, parallelism))
    live: dict[str, dict[str, Any]] = {}
    failed: dict[str, ReconcilerError] = {}
    chunks = _chunks(desired)

    async def one(chunk: list[Desired]) -> None:
        ids = [d.asset_id for d in chunk]
        async with slots:
            try:
                found = await client.fetch(ids, {d.asset_id: d.app_user_id for d in chunk})
            except (ReconcilerError, ExceptionGroup) as exc:
                error = _find_error(exc)
                if error is None:
                    raise
                if isinstance(error, CredentialsRejected):
                    raise error from None
                failed.update(dict.fromkeys(ids, error))
                return
        got = {asset_id: _raw(found[asset_id]) for asset_id in ids if asset_id in found}
        live.update(got)
        if on_chunk is not None:
            on_chunk(chunk, got)

    await asyncio.gather(*(one(c) for c in chunks))
    if chunks and len(failed) == len(desired):
        raise next(iter(failed.values()))
    return live, failed


def _find_error(exc: BaseException) -> ReconcilerError | None:
    """The project error inside ``exc`` (the client's task group wraps failures in a group)."""
    if isinstance(exc, ReconcilerError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find_error(inner)
            if found is not None:
                return found
    return None


def _fetch_error(item: Desired, exc: ReconcilerError) -> AssetPlan:
    return AssetPlan(
        asset_id=item.asset_id,
        action=Action.ERROR,
        name=item.name or item.desired.get("asset_name"),
        source=item.source,
        app_user_id=item.app_user_id,
        errors=[f"could not read the live asset: {exc}"],
        error_code=exc.error_code if isinstance(exc, ApiError) else None,
    )


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def build_plan(
    desired: Sequence[Desired],
    client: LiveSource,
    *,
    state: RecordSource | None,
    target_name: str | None,
    project_id: str,
    endpoint: str | None,
    parallelism: int = DEFAULT_PARALLELISM,
) -> Plan:
    """Plan every desired asset against live, in manifest order."""
    ids = [d.asset_id for d in desired]
    records = state.get_many(project_id, ids) if state is not None else {}
    diffed: dict[int, AssetPlan] = {}

    def diff_chunk(chunk: list[Desired], live: dict[str, dict[str, Any]]) -> None:
        for item in chunk:
            diffed[id(item)] = diff_asset(
                item,
                live.get(item.asset_id),
                write_only_record=records.get(item.asset_id),
                project_id=project_id,
            )

    _, failed = await fetch_live(desired, client, parallelism, on_chunk=diff_chunk)
    assets = [
        _fetch_error(item, failed[item.asset_id]) if item.asset_id in failed else diffed[id(item)]
        for item in desired
    ]
    plan = Plan(
        assets=assets,
        target=target_name,
        project_id=project_id,
        endpoint=endpoint,
        created_at=now_rfc3339(),
    )
    warning = safety.threshold_message(plan)
    if warning:
        plan.warnings.append(warning)
    return plan
