"""Bulk reads of live assets: by ids or by pages, past per-chunk errors, as plain JSON.

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

A chunk that fails after the client's retries turns only its own assets into failures.  The
assets of a page that fails are asked for by id instead, except when the service cannot be
reached at all on the first page: then every paged asset fails with that error at once, as all
chunks would have.  Refused credentials end the run at once; when every asset fails (the service
is down) the run fails as a whole with that error instead of one message per asset.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from reconciler.api.errors import ApiError, AssetNotFound, CredentialsRejected, ServiceUnreachable
from reconciler.constants import PAGE_SIZE
from reconciler.engine.planner import ReadFailure
from reconciler.errors import ReconcilerError, unwrap

CHUNK = PAGE_SIZE


class Wanted(Protocol):
    """An asset to read: its id and the X-App-UserId it was created under, if any."""

    @property
    def asset_id(self) -> str: ...
    @property
    def app_user_id(self) -> str | None: ...


W = TypeVar("W", bound=Wanted)


class LiveSource(Protocol):
    """The part of ``reconciler.api.client.MetaStudioClient`` that reads by ids."""

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


def raw_of(value: Any) -> dict[str, Any]:
    """The raw JSON of a live asset (the client's ``LiveAsset`` or a plain mapping)."""
    return dict(getattr(value, "raw", value))


def usable(
    found: Mapping[str, Any], failed: dict[str, ReconcilerError]
) -> dict[str, dict[str, Any]]:
    """The raw JSON of the assets in ``found`` that can be used; one the client marked unusable
    (it holds NaN or Infinity) goes to ``failed`` instead, so it fails alone and its values
    never reach a plan, a renderer or a PUT body."""
    got: dict[str, dict[str, Any]] = {}
    for asset_id, asset in found.items():
        problem = getattr(asset, "problem_error", None)
        error = problem() if problem is not None else None
        if error is not None:
            failed[asset_id] = error
        else:
            got[asset_id] = raw_of(asset)
    return got


def _asset_id(value: Any) -> Any:
    raw = getattr(value, "raw", value)
    return raw.get("asset_id") if isinstance(raw, Mapping) else None


def failure(error: ReconcilerError) -> ReadFailure:
    """What the engine needs to know about a failed read: its message and service code."""
    return ReadFailure(str(error), error.error_code if isinstance(error, ApiError) else None)


def expected_error(exc: BaseException) -> ReconcilerError:
    """The project error of a failed read; refused credentials end the run at once, and an
    unexpected exception is re-raised (a bug, not a service answer)."""
    error = unwrap(exc)
    if not isinstance(error, ReconcilerError):
        raise exc
    if isinstance(error, CredentialsRejected):
        raise error from None
    return error


def chunks(wanted: Sequence[W]) -> list[list[W]]:
    """Groups of at most one page, per X-App-UserId (each group is one request)."""
    groups: dict[str | None, list[W]] = {}
    for item in wanted:
        groups.setdefault(item.app_user_id, []).append(item)
    return [ids[i : i + CHUNK] for ids in groups.values() for i in range(0, len(ids), CHUNK)]


ChunkCallback = Callable[[list[W], dict[str, dict[str, Any]]], None]


class _Fetch(Generic[W]):
    """One run's reads: what was found, what failed, and the callback for each arrival."""

    def __init__(
        self, client: LiveSource, parallelism: int, on_chunk: ChunkCallback[W] | None
    ) -> None:
        self.client = client
        self.slots = asyncio.Semaphore(max(1, parallelism))
        self.on_chunk = on_chunk
        self.live: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, ReconcilerError] = {}

    def _arrived(self, chunk: list[W], got: dict[str, dict[str, Any]]) -> None:
        self.live.update(got)
        if self.on_chunk is not None and chunk:
            self.on_chunk(chunk, got)

    async def by_ids(self, wanted: Sequence[W]) -> None:
        await asyncio.gather(*(self._chunk(c) for c in chunks(wanted)))

    async def _chunk(self, chunk: list[W]) -> None:
        ids = [d.asset_id for d in chunk]
        async with self.slots:
            try:
                found = await self.client.fetch(ids, {d.asset_id: d.app_user_id for d in chunk})
            except (ReconcilerError, ExceptionGroup) as exc:
                self.failed.update(dict.fromkeys(ids, expected_error(exc)))
                return
        got = usable({i: found[i] for i in ids if i in found}, self.failed)
        self._arrived([d for d in chunk if d.asset_id not in self.failed], got)

    async def by_pages(self, wanted_items: Sequence[W], client: PagedSource) -> None:
        """Page through the project when that costs no more requests than reading by ids."""
        wanted: dict[str, list[W]] = {}
        for item in wanted_items:
            wanted.setdefault(item.asset_id, []).append(item)
        seen: set[str] = set()

        def take(page: Sequence[Any]) -> None:
            found: dict[str, Any] = {}
            for asset in page:
                asset_id = _asset_id(asset)
                if asset_id in wanted and asset_id not in seen:
                    seen.add(asset_id)
                    found[asset_id] = asset
            got = usable(found, self.failed)
            self._arrived([d for asset_id in got for d in wanted[asset_id]], got)

        async def page(offset: int) -> Sequence[Any] | None:
            async with self.slots:
                try:
                    return (await client.list_page(offset, CHUNK))[1]
                except (ReconcilerError, ExceptionGroup) as exc:
                    expected_error(exc)
                    return None  # its assets are read by id below

        async with self.slots:
            try:
                count, first = await client.list_page(0, CHUNK)
            except (ReconcilerError, ExceptionGroup) as exc:
                error = expected_error(exc)
                if isinstance(error, ServiceUnreachable):  # retrying by ids would only wait again
                    self.failed.update(dict.fromkeys(wanted, error))
                    return
                count, first = 0, []  # read everything by ids
        take(first)
        if math.ceil(count / CHUNK) <= math.ceil(len(wanted) / CHUNK):
            pages = [page(offset) for offset in range(CHUNK, count, CHUNK)]
            for next_page in asyncio.as_completed(pages):
                take(await next_page or [])
        await self.by_ids([d for d in wanted_items if d.asset_id not in seen])


async def fetch_live(
    wanted: Sequence[W],
    client: LiveSource,
    parallelism: int,
    on_chunk: ChunkCallback[W] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, ReadFailure]]:
    """Live raw JSON by asset id, and the failure for each asset whose chunk could not be read.

    ``on_chunk(chunk, live_of_chunk)`` runs as soon as a chunk arrives, so CPU work on it
    overlaps with the paced wait for the next pages instead of following all of them.  Every
    wanted asset is passed to ``on_chunk`` exactly once unless its read failed.
    """
    run: _Fetch[W] = _Fetch(client, parallelism, on_chunk)
    plain = [d for d in wanted if d.app_user_id is None]
    if len(plain) > CHUNK and isinstance(client, PagedSource):
        await asyncio.gather(
            run.by_pages(plain, client),
            run.by_ids([d for d in wanted if d.app_user_id is not None]),
        )
    else:
        await run.by_ids(wanted)
    if wanted and len(run.failed) == len({d.asset_id for d in wanted}):
        raise next(iter(run.failed.values()))
    return run.live, {asset_id: failure(error) for asset_id, error in run.failed.items()}


class ShowSource(Protocol):
    """The part of ``reconciler.api.client.MetaStudioClient`` that reads one asset whole."""

    async def show(self, asset_id: str, app_user_id: str | None = None) -> Any: ...


async def show_each(
    wanted: Sequence[W], client: ShowSource, parallelism: int
) -> tuple[dict[str, dict[str, Any]], dict[str, ReadFailure]]:
    """Each asset read whole with ShowAsset (the client paces them on the show limit).

    For list rows that lack a managed field or block (design.md 3.10).  An asset ShowAsset does
    not know is absent from the result (missing); a failed read is a failure of that asset only.
    """
    slots = asyncio.Semaphore(max(1, parallelism))
    found: dict[str, dict[str, Any]] = {}
    failed: dict[str, ReadFailure] = {}

    async def one(item: W) -> None:
        async with slots:
            try:
                asset = await client.show(item.asset_id, item.app_user_id)
            except AssetNotFound:
                return
            except ReconcilerError as exc:
                failed[item.asset_id] = failure(expected_error(exc))
                return
        found[item.asset_id] = raw_of(asset)

    unique = {item.asset_id: item for item in wanted}
    try:
        async with asyncio.TaskGroup() as group:
            for item in unique.values():
                group.create_task(one(item))
    except BaseExceptionGroup as exc:
        raise unwrap(exc) from None
    return found, failed
