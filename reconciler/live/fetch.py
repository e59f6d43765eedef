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

``drift``, ``watch`` and ``import --all`` need every asset of the project, not only the managed
ones: :class:`ProjectReads` pages through all of it, then reads by id, the same way, the managed
assets that no page held, and calls one missing only when ShowAsset answers that it does not
exist (design.md 3.13).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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


class LiveReads(Generic[W]):
    """The reads of one run, fed with the assets to read while the manifests are still loading.

    ``run(expected)`` starts at once, before any asset is known: with more than one page of
    ``expected`` manifests (the number of files found) and a client that can page, the first
    page of the project goes out immediately, and once it tells the project's size the rest is
    paged through in parallel or, when that would take more requests than the ids, read by ids.
    :meth:`want` hands over assets as their manifests are validated: an asset whose row a page
    already brought is passed on at once, and ids to read are sent as soon as a chunk of them is
    full.  :meth:`close` says that no more will come; then partial chunks go out, and wanted
    assets that no page held are asked for by id.  Cancelling the task that runs :meth:`run`
    stops every read at once (a manifest turned out invalid).

    Page rows that arrive before their manifest wait in a buffer until :meth:`close`; live
    rows are never kept after ``on_chunk`` has seen them, so memory does not grow with the
    live data of a run.
    """

    def __init__(
        self, client: LiveSource, parallelism: int, on_chunk: ChunkCallback[W] | None
    ) -> None:
        self.client = client
        self.slots = asyncio.Semaphore(max(1, parallelism))
        self.on_chunk = on_chunk
        self.failed: dict[str, ReconcilerError] = {}
        self._ids: set[str] = set()  # every asset id wanted
        self._by_ids: dict[str | None, list[W]] = {}  # per X-App-UserId, not yet sent
        self._unpaged: dict[str, list[W]] = {}  # wanted, waiting for a page to bring them
        self._buffer: dict[str, Any] = {}  # page rows not (yet) wanted
        self._seen: set[str] = set()  # delivered from a page
        self._paging: bool | None = None  # None until the first page decided
        self._pages_done = False
        self._unreachable: ReconcilerError | None = None
        self._closed = asyncio.Event()
        self._exact: int | None = None  # how many assets will be wanted, when known up front
        self._group: asyncio.TaskGroup | None = None
        self._page_tasks: list[asyncio.Task[None]] = []

    # --- feeding --------------------------------------------------------------------------

    def want(self, items: Sequence[W]) -> None:
        """Read these assets too (their manifests are valid)."""
        arrived: dict[str, Any] = {}
        delivered: list[W] = []
        for item in items:
            self._ids.add(item.asset_id)
            if item.app_user_id is not None or self._paging is False:
                self._by_ids.setdefault(item.app_user_id, []).append(item)
            elif self._unreachable is not None:
                self.failed[item.asset_id] = self._unreachable
            elif item.asset_id in self._buffer or item.asset_id in arrived:
                if item.asset_id not in arrived:
                    arrived[item.asset_id] = self._buffer.pop(item.asset_id)
                self._seen.add(item.asset_id)
                delivered.append(item)
            elif self._pages_done:
                self._by_ids.setdefault(None, []).append(item)
            else:
                self._unpaged.setdefault(item.asset_id, []).append(item)
        if delivered:
            got = usable(arrived, self.failed)
            self._arrived([d for d in delivered if d.asset_id in got], got)
        self._send_ids(full_only=self._more_to_come())

    def close(self) -> None:
        """No more assets will be wanted: send what is left and finish.

        When fewer assets are wanted than the file count suggested (manifests of another
        target, a selector) and reading the rest by id takes fewer requests than the pages
        still to come, those pages are not sent.
        """
        self._buffer.clear()
        self._closed.set()
        if self._paging and not self._pages_done:
            pending = [task for task in self._page_tasks if not task.done()]
            if math.ceil(len(self._unpaged) / CHUNK) < len(pending):
                for task in pending:
                    task.cancel()

    def failures(self) -> dict[str, ReadFailure]:
        """The failure of each asset whose read failed."""
        return {asset_id: failure(error) for asset_id, error in self.failed.items()}

    # --- the run --------------------------------------------------------------------------

    async def run(self, expected: int, *, exact: bool = False, fail_together: bool = True) -> None:
        """Read until :meth:`close` was called and every read has ended.

        ``exact``: exactly ``expected`` assets will be wanted (the ids of ``--asset``); once
        they all are, their partial chunks go out at once instead of when the load ends.
        ``fail_together``: when every read failed, raise that error instead of leaving one
        failure per asset (False when the project was just read, so the service is up).
        """
        self._exact = expected if exact else None
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self._send_ids(full_only=self._more_to_come())  # wanted before the run started
                if expected > CHUNK and isinstance(self.client, PagedSource):
                    await self._pages(expected, self.client)
                else:
                    self._stop_paging()
                await self._closed.wait()
                self._stop_paging()
        except BaseExceptionGroup as group:  # refused credentials, or a bug
            raise unwrap(group) from None
        finally:
            self._group = None
        if fail_together and self._ids and len(self.failed) == len(self._ids):
            raise next(iter(self.failed.values()))

    async def _pages(self, expected: int, client: PagedSource) -> None:
        async with self.slots:
            try:
                count, first = await client.list_page(0, CHUNK)
            except (ReconcilerError, ExceptionGroup) as exc:
                error = expected_error(exc)
                if isinstance(error, ServiceUnreachable):  # retrying by ids would only wait again
                    self._unreachable = error
                    for asset_id in self._unpaged:
                        self.failed[asset_id] = error
                    self._unpaged.clear()
                    self._pages_done = True
                    return
                count, first = 0, []  # read everything by ids
        self._take(first)
        if math.ceil(count / CHUNK) > math.ceil(expected / CHUNK):
            self._stop_paging()  # a large project with few managed assets: ids are cheaper
            return
        self._paging = True
        assert self._group is not None
        self._page_tasks = [
            self._group.create_task(self._page(offset, client))
            for offset in range(CHUNK, count, CHUNK)
        ]
        if self._page_tasks:
            await asyncio.wait(self._page_tasks)
        self._pages_done = True
        self._unpaged_to_ids()

    async def _page(self, offset: int, client: PagedSource) -> None:
        async with self.slots:
            try:
                _, rows = await client.list_page(offset, CHUNK)
            except (ReconcilerError, ExceptionGroup) as exc:
                expected_error(exc)
                return  # its assets are read by id once paging has ended
        self._take(rows)

    def _take(self, page: Sequence[Any]) -> None:
        found: dict[str, Any] = {}
        items: list[W] = []
        for asset in page:
            asset_id = _asset_id(asset)
            if asset_id in self._seen:
                continue
            if asset_id in self._unpaged:
                self._seen.add(asset_id)  # an unusable one fails alone, not asked for again
                found[asset_id] = asset
                items.extend(self._unpaged.pop(asset_id))
            elif not self._closed.is_set() and isinstance(asset_id, str):
                self._buffer.setdefault(asset_id, asset)
        if items:
            got = usable(found, self.failed)
            self._arrived([d for d in items if d.asset_id in got], got)

    def _stop_paging(self) -> None:
        """From now on every wanted asset is read by id."""
        if self._paging is None:
            self._paging = False
        self._pages_done = True
        self._unpaged_to_ids()

    def _unpaged_to_ids(self) -> None:
        for items in self._unpaged.values():
            for item in items:
                self._by_ids.setdefault(item.app_user_id, []).append(item)
        self._unpaged.clear()
        self._send_ids(full_only=self._more_to_come())

    def _more_to_come(self) -> bool:
        """More assets may still be wanted: send only full chunks of ids."""
        if self._closed.is_set():
            return False
        return self._exact is None or len(self._ids) < self._exact

    def _send_ids(self, *, full_only: bool) -> None:
        if self._group is None:
            return  # not running yet: run() sends them
        for user, items in list(self._by_ids.items()):
            if self._paging is None and user is None:
                continue  # the first page may still bring them
            while len(items) >= CHUNK or (items and not full_only):
                chunk, items[:] = items[:CHUNK], items[CHUNK:]
                self._group.create_task(self._chunk(chunk))
            if not items:
                del self._by_ids[user]

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

    def _arrived(self, chunk: list[W], got: dict[str, dict[str, Any]]) -> None:
        if self.on_chunk is not None and chunk:
            self.on_chunk(chunk, got)


async def fetch_live(
    wanted: Sequence[W],
    client: LiveSource,
    parallelism: int,
    on_chunk: ChunkCallback[W] | None = None,
) -> dict[str, ReadFailure]:
    """Read every wanted asset; the failure for each asset whose read failed.

    ``on_chunk(chunk, live_of_chunk)`` runs as soon as a chunk arrives, so CPU work on it
    overlaps with the paced wait for the next pages instead of following all of them.  Every
    wanted asset is passed to ``on_chunk`` exactly once unless its read failed.
    """
    reads: LiveReads[W] = LiveReads(client, parallelism, on_chunk)
    reads.want(wanted)
    reads.close()
    await reads.run(expected=sum(1 for d in wanted if d.app_user_id is None))
    return reads.failures()


class ShowSource(Protocol):
    """The part of ``reconciler.api.client.MetaStudioClient`` that reads one asset whole."""

    async def show(self, asset_id: str, app_user_id: str | None = None) -> Any: ...


@dataclass
class Shown:
    """What ShowAsset said of each asset asked for: its raw JSON (``found``), that it does not
    exist (``not_found``: the service's 400 ``MSS.10001001``, in its own words), or why the
    read failed (``failed``)."""

    found: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_found: dict[str, ReadFailure] = field(default_factory=dict)
    failed: dict[str, ReadFailure] = field(default_factory=dict)


async def show_all(wanted: Sequence[W], client: ShowSource, parallelism: int) -> Shown:
    """Each asset read whole with ShowAsset (the client paces them on the show limit); a failed
    read is a failure of that asset only, and an asset the client marked unusable fails alone."""
    slots = asyncio.Semaphore(max(1, parallelism))
    shown = Shown()

    async def one(item: W) -> None:
        async with slots:
            try:
                asset = await client.show(item.asset_id, item.app_user_id)
            except AssetNotFound as exc:
                shown.not_found[item.asset_id] = not_found(exc)
                return
            except ReconcilerError as exc:
                shown.failed[item.asset_id] = failure(expected_error(exc))
                return
        errors: dict[str, ReconcilerError] = {}
        shown.found.update(usable({item.asset_id: asset}, errors))
        shown.failed.update((asset_id, failure(error)) for asset_id, error in errors.items())

    unique = {item.asset_id: item for item in wanted}
    try:
        async with asyncio.TaskGroup() as group:
            for item in unique.values():
                group.create_task(one(item))
    except BaseExceptionGroup as exc:
        raise unwrap(exc) from None
    return shown


def not_found(error: ApiError) -> ReadFailure:
    """The service's own "not found" answer for one asset, as the report quotes it."""
    answer = " ".join(
        part for part in (str(error.status or ""), error.error_code, error.error_msg) if part
    )
    if error.request_id:
        answer += f" (request id {error.request_id})"
    return ReadFailure(f"ShowAsset answered {answer}", error.error_code)


async def show_each(
    wanted: Sequence[W], client: ShowSource, parallelism: int
) -> tuple[dict[str, dict[str, Any]], dict[str, ReadFailure]]:
    """Each asset read whole with ShowAsset (see :func:`show_all`).

    For list rows that lack a managed field or block (design.md 3.10).  An asset ShowAsset does
    not know is absent from the result (missing); a failed read is a failure of that asset only.
    """
    shown = await show_all(wanted, client, parallelism)
    return shown.found, shown.failed


async def read_by_ids(
    wanted: Sequence[W], client: LiveSource, parallelism: int
) -> tuple[dict[str, dict[str, Any]], dict[str, ReconcilerError]]:
    """Each asset asked for by id with the list API, as ``plan`` asks for the assets no page
    held: chunks of 100 per X-App-UserId, a failed chunk failing only its own assets.

    Returns the raw JSON of those found and the error of those whose read failed; an asset in
    neither is one the list filtered by its id did not return.
    """
    found: dict[str, dict[str, Any]] = {}

    def arrived(_chunk: list[W], live: dict[str, dict[str, Any]]) -> None:
        found.update(live)

    reads: LiveReads[W] = LiveReads(client, parallelism, arrived)
    reads.want(wanted)
    reads.close()
    await reads.run(expected=0, fail_together=False)  # 0: by ids, never by pages
    return found, reads.failed


class ProjectSource(LiveSource, ShowSource, Protocol):
    """The reads of a whole project (``reconciler.api.client.MetaStudioClient``): every page
    of the list API, the list filtered by ids, and ShowAsset."""

    async def list_all(self) -> Sequence[Any]: ...


@dataclass
class ProjectRead:
    """A whole project as read for drift, watch and import.

    ``rows``: the raw JSON of every asset seen, by id (each page's rows, then the wanted assets
    read by id); ``failed``: the wanted assets whose read failed or was unusable; ``missing``:
    the wanted assets the service said it does not have, each with the service's answer.
    """

    rows: dict[str, dict[str, Any]]
    failed: dict[str, ReadFailure]
    missing: dict[str, ReadFailure]


class ProjectReads(Generic[W]):
    """Read a whole project, then by id every wanted asset that no page held.

    Paging alone cannot tell that an asset is gone: an asset deleted or created while the
    pages are read shifts the offsets, so an asset that exists can be on no page.  So a wanted
    asset that no page held is asked for by id (:func:`read_by_ids`, as ``plan`` does); one
    that list does not return either is asked for with ShowAsset, and it is missing only when
    ShowAsset answers "not found" (400 ``MSS.10001001``), with the service's own words.

    :meth:`start` begins paging before the wanted assets are known (the manifests may still
    be loading); :meth:`finish` takes them and reads the rest.
    """

    def __init__(self, client: ProjectSource, parallelism: int) -> None:
        self.client = client
        self.parallelism = parallelism
        self._listing: asyncio.Task[Sequence[Any]] | None = None

    def start(self) -> None:
        """Begin paging through the project now (once)."""
        if self._listing is None:
            self._listing = asyncio.ensure_future(self.client.list_all())

    async def cancel(self) -> None:
        """Stop paging now; an error the listing already ended with goes with it."""
        task, self._listing = self._listing, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def finish(self, wanted: Sequence[W]) -> ProjectRead:
        """Every page, then the ``wanted`` assets no page held, by id."""
        self.start()
        assert self._listing is not None
        listed = await self._listing
        wanted_ids = {item.asset_id for item in wanted}
        rows: dict[str, dict[str, Any]] = {}
        errors: dict[str, ReconcilerError] = {}
        for asset in listed:
            asset_id = _asset_id(asset)
            if asset_id in wanted_ids:  # a wanted asset holding NaN fails alone
                rows.update(usable({asset_id: asset}, errors))
            elif isinstance(asset_id, str):
                rows[asset_id] = raw_of(asset)
        unseen = [d for d in wanted if d.asset_id not in rows and d.asset_id not in errors]
        if unseen:
            found, by_id_errors = await read_by_ids(unseen, self.client, self.parallelism)
            rows.update(found)
            errors.update(by_id_errors)
        failed = {asset_id: failure(error) for asset_id, error in errors.items()}
        unfound = [d for d in unseen if d.asset_id not in rows and d.asset_id not in failed]
        shown = await show_all(unfound, self.client, self.parallelism)
        rows.update(shown.found)
        failed.update(shown.failed)
        return ProjectRead(rows=rows, failed=failed, missing=shown.not_found)


# --- incremental reads: what changed since a watermark -----------------------------------------

NEWEST_FIRST: dict[str, str] = {"sort_key": "update_time", "sort_dir": "desc"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SortedSource(Protocol):
    """A live source that lists the project in a requested order (the real client)."""

    async def list_page(
        self, offset: int, limit: int = ..., **filters: Any
    ) -> tuple[int, Sequence[Any]]: ...


def update_millis(value: object) -> int | None:
    """An ``update_time`` (RFC 3339, second or millisecond precision) in milliseconds since
    1970, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


@dataclass
class ChangedListing:
    """The project listed newest first, down to a watermark.

    ``count``: the first page's count; ``newest``: the first row's ``update_time`` (ms), the
    service's own clock at the moment of the read, which the next read starts from; ``rows``:
    the rows at or after the watermark minus the margin, by id, each once; ``pages``: the pages
    read; ``problem``: why the listing cannot be trusted (a reason word and what was seen), in
    which case the caller reads the whole project instead.
    """

    count: int = 0
    newest: int | None = None
    rows: dict[str, Any] = field(default_factory=dict)
    pages: int = 0
    problem: tuple[str, str] | None = None


async def list_changed(client: SortedSource, since: int | None, margin: int) -> ChangedListing:
    """The assets changed at or after ``since - margin`` (ms), listed by ``update_time``
    descending, page by page, stopping at the first page whose oldest row is older than that
    (or at the end of the project).  ``since`` None reads the first page only (the watermark
    and count of a full read).

    Rows must come newest first: a row newer than the one before it, or one without a readable
    ``update_time``, means the service did not sort (``order``).  The first row older than
    ``since`` means the newest asset is gone or the sort was ignored (``watermark``); a count
    that changes between pages, that the project changed while it was listed (``count``).  A
    page that fails raises, as the client does.
    """
    listing = ChangedListing()
    threshold = None if since is None else since - margin
    previous: int | None = None
    offset = 0
    while True:
        count, page = await client.list_page(offset, CHUNK, **NEWEST_FIRST)
        listing.pages += 1
        if listing.pages == 1:
            listing.count = count
        elif count != listing.count:
            listing.problem = (
                "count",
                f"the count changed from {listing.count} to {count} between pages",
            )
            return listing
        for asset in page:
            raw = getattr(asset, "raw", asset)
            asset_id = _asset_id(asset)
            stamp = update_millis(raw.get("update_time") if isinstance(raw, Mapping) else None)
            if stamp is None:
                listing.problem = ("order", f"asset {asset_id} has no readable update_time")
                return listing
            if previous is not None and stamp > previous:
                listing.problem = (
                    "order",
                    f"the rows are not newest first (asset {asset_id}, updated "
                    f"{raw.get('update_time')}, follows an older one at offset {offset})",
                )
                return listing
            previous = stamp
            if listing.newest is None:
                listing.newest = stamp
            if (threshold is None or stamp >= threshold) and isinstance(asset_id, str):
                listing.rows.setdefault(asset_id, asset)
        if threshold is None or len(page) < CHUNK or previous is None or previous < threshold:
            break
        offset += CHUNK
    if since is not None and listing.newest is not None and listing.newest < since:
        listing.problem = (
            "watermark",
            "the newest asset listed is older than the last read's newest (the service "
            "ignored the sort, or that asset was deleted)",
        )
    return listing


async def read_wanted(wanted: Sequence[W], client: ProjectSource, parallelism: int) -> ProjectRead:
    """The ``wanted`` assets by id (:func:`read_by_ids`), then with ShowAsset those the list
    did not return: missing only when ShowAsset answers "not found", as a whole-project read
    decides it."""
    rows, errors = await read_by_ids(wanted, client, parallelism)
    failed = {asset_id: failure(error) for asset_id, error in errors.items()}
    unfound = [d for d in wanted if d.asset_id not in rows and d.asset_id not in failed]
    shown = await show_all(unfound, client, parallelism)
    rows.update(shown.found)
    failed.update(shown.failed)
    return ProjectRead(rows=rows, failed=failed, missing=shown.not_found)
