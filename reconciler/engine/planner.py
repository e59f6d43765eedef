"""Build a Plan: bulk-fetch the live assets, diff each one, keep going past per-asset errors.

Live state is read with the list API, one page of 100 assets per request, in one of two ways:

* **by ids** (``client.fetch``): chunks of 100 ids per X-App-UserId, each chunk one request;
* **by pages of the whole project** (``client.list_page``): when the project is mostly managed,
  paging through all of it takes no more requests than asking for the ids, and its URLs are
  short (100 repeated ``asset_id`` keys made URL handling the largest HTTP cost on our side).

Paging is chosen per run, for the assets without an X-App-UserId (those with one need the header,
so they are always read by ids): the first page tells the project's size, and when more pages
than id chunks would be needed the rest is read by ids.  Assets that no page held (not created
yet, or moved between pages while they were read) are then asked for by id, so paging never
turns an existing asset into a missing one.

A chunk that fails after the client's retries turns only its own assets into error rows.  The
assets of a page that fails are asked for by id instead, except when the service cannot be
reached at all on the first page: then every paged asset fails with that error at once, as all
chunks would have.  When every asset fails (the service is down, or the credentials are refused)
the run fails as a whole with that error instead of printing the same message once per asset.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from reconciler.api.errors import ApiError, CredentialsRejected, ServiceUnreachable
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


@runtime_checkable
class PagedSource(Protocol):
    """A live source that can also list the whole project page by page (the real client)."""

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> Mapping[str, Any]: ...

    async def list_page(self, offset: int, limit: int = ...) -> tuple[int, Sequence[Any]]: ...


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


def _asset_id(value: Any) -> Any:
    raw = getattr(value, "raw", value)
    return raw.get("asset_id") if isinstance(raw, Mapping) else None


ChunkCallback = Callable[[list[Desired], dict[str, dict[str, Any]]], None]


class _Fetch:
    """One run's reads: what was found, what failed, and the callback for each arrival."""

    def __init__(
        self, client: LiveSource, parallelism: int, on_chunk: ChunkCallback | None
    ) -> None:
        self.client = client
        self.slots = asyncio.Semaphore(max(1, parallelism))
        self.on_chunk = on_chunk
        self.live: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, ReconcilerError] = {}

    def _arrived(self, chunk: list[Desired], got: dict[str, dict[str, Any]]) -> None:
        self.live.update(got)
        if self.on_chunk is not None and chunk:
            self.on_chunk(chunk, got)

    @staticmethod
    def _expected(exc: BaseException) -> ReconcilerError:
        """The project error of a failed read; refused credentials end the run at once."""
        error = _find_error(exc)
        if error is None:
            raise exc
        if isinstance(error, CredentialsRejected):
            raise error from None
        return error

    async def by_ids(self, desired: Sequence[Desired]) -> None:
        await asyncio.gather(*(self._chunk(c) for c in _chunks(desired)))

    async def _chunk(self, chunk: list[Desired]) -> None:
        ids = [d.asset_id for d in chunk]
        async with self.slots:
            try:
                found = await self.client.fetch(ids, {d.asset_id: d.app_user_id for d in chunk})
            except (ReconcilerError, ExceptionGroup) as exc:
                self.failed.update(dict.fromkeys(ids, self._expected(exc)))
                return
        self._arrived(chunk, {i: _raw(found[i]) for i in ids if i in found})

    async def by_pages(self, desired: Sequence[Desired], client: PagedSource) -> None:
        """Page through the project when that costs no more requests than reading by ids."""
        wanted: dict[str, list[Desired]] = {}
        for item in desired:
            wanted.setdefault(item.asset_id, []).append(item)
        seen: set[str] = set()

        def take(page: Sequence[Any]) -> None:
            got: dict[str, dict[str, Any]] = {}
            for asset in page:
                asset_id = _asset_id(asset)
                if asset_id in wanted and asset_id not in seen:
                    seen.add(asset_id)
                    got[asset_id] = _raw(asset)
            self._arrived([d for asset_id in got for d in wanted[asset_id]], got)

        async def page(offset: int) -> Sequence[Any] | None:
            async with self.slots:
                try:
                    return (await client.list_page(offset, CHUNK))[1]
                except (ReconcilerError, ExceptionGroup) as exc:
                    self._expected(exc)
                    return None  # its assets are read by id below

        async with self.slots:
            try:
                count, first = await client.list_page(0, CHUNK)
            except (ReconcilerError, ExceptionGroup) as exc:
                error = self._expected(exc)
                if isinstance(error, ServiceUnreachable):  # retrying by ids would only wait again
                    self.failed.update(dict.fromkeys(wanted, error))
                    return
                count, first = 0, []  # read everything by ids
        take(first)
        if math.ceil(count / CHUNK) <= math.ceil(len(wanted) / CHUNK):
            pages = [page(offset) for offset in range(CHUNK, count, CHUNK)]
            for next_page in asyncio.as_completed(pages):
                take(await next_page or [])
        await self.by_ids([d for d in desired if d.asset_id not in seen])


async def fetch_live(
    desired: Sequence[Desired],
    client: LiveSource,
    parallelism: int,
    on_chunk: ChunkCallback | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, ReconcilerError]]:
    """Live raw JSON by asset id, and the error for each asset whose chunk could not be read.

    ``on_chunk(chunk, live_of_chunk)`` runs as soon as a chunk arrives, so CPU work on it
    overlaps with the paced wait for the next pages instead of following all of them.  Every
    desired asset is passed to ``on_chunk`` exactly once unless its read failed.
    """
    run = _Fetch(client, parallelism, on_chunk)
    plain = [d for d in desired if d.app_user_id is None]
    if len(plain) > CHUNK and isinstance(client, PagedSource):
        await asyncio.gather(
            run.by_pages(plain, client),
            run.by_ids([d for d in desired if d.app_user_id is not None]),
        )
    else:
        await run.by_ids(desired)
    if desired and len(run.failed) == len({d.asset_id for d in desired}):
        raise next(iter(run.failed.values()))
    return run.live, run.failed


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
