"""The async MetaStudio client: bulk reads through the list API, paced, retried, signed.

Live state is read in pages of 100 through ``ListAssets`` (by asset ids, grouped by
``X-App-UserId``), never one GET per asset.  Every request waits for its API's rate limiter,
and 429, 5xx and transport failures are retried with backoff within a bounded number of attempts
and a bounded total time.  Other answers fail at once with an :class:`ApiError` subclass.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from reconciler import __version__
from reconciler.api.auth import Credentials
from reconciler.api.config import Target
from reconciler.api.errors import (
    ApiError,
    CredentialsRejected,
    ServiceError,
    ServiceUnreachable,
    Throttled,
    error_for_status,
)
from reconciler.api.models import DigitalAssetInfo
from reconciler.api.pacing import Pacer
from reconciler.api.signing import canonical_query
from reconciler.errors import ConfigError, unwrap

log = logging.getLogger(__name__)

PAGE_SIZE = 100
USER_AGENT = f"reconciler/{__version__}"
# ListAssets parameters that repeat their key per value; other lists are comma-separated.
REPEATED_QUERY_KEYS = frozenset({"asset_id", "accurate_query_field"})
QueryValue = str | int | bool | Sequence[str] | None


@dataclass(frozen=True)
class RetryPolicy:
    """How failed attempts are retried; the delays are parameters so tests can shrink them."""

    max_retries: int = 5
    backoff_base: float = 0.5  # 5xx / transport: uniform(base, min(cap, base * 2**n))
    backoff_cap: float = 8.0
    throttle_delay: tuple[float, float] = (2.0, 5.0)  # 429 without Retry-After
    retry_after_cap: float = 60.0
    total_time: float = 180.0  # no new attempt would start after this many seconds

    def backoff(self, attempt: int) -> float:
        upper = min(self.backoff_cap, self.backoff_base * 2**attempt)
        return random.uniform(min(self.backoff_base, upper), upper)

    def throttle(self, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return random.uniform(*self.throttle_delay)


class LiveAsset:
    """One asset as the service returned it: the exact JSON, and a lenient typed view on demand.

    The engine diffs ``raw``; the typed ``info`` is validated only when first read, because
    validating every asset of a 10,000-asset plan cost more CPU than diffing them.  The id is
    checked when the asset is received, so a body without a string ``asset_id`` still fails at
    once.
    """

    def __init__(
        self,
        raw: dict[str, Any],
        request_id: str | None = None,
        *,
        where: tuple[str, str, int] | None = None,
    ) -> None:
        self.raw = raw
        self.request_id = request_id
        self._where = where  # (method, path, status) of the response, for a bad-body error

    def __repr__(self) -> str:
        return f"LiveAsset(asset_id={self.asset_id!r}, request_id={self.request_id!r})"

    @property
    def asset_id(self) -> str:
        asset_id: str = self.raw["asset_id"]
        return asset_id

    @functools.cached_property
    def info(self) -> DigitalAssetInfo:
        """The lenient typed view; a value it cannot read is a :class:`ServiceError`."""
        try:
            return DigitalAssetInfo.model_validate(self.raw)
        except ValidationError as exc:
            method, path, status = self._where or ("GET", "", 200)
            raise ServiceError(
                method=method,
                path=path,
                status=status,
                error_msg=f"unexpected response: {_first_error(exc)}",
                request_id=self.request_id,
            ) from None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _query_pairs(params: Mapping[str, QueryValue]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str | int):
            pairs.append((key, str(value)))
        elif key in REPEATED_QUERY_KEYS:
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, ",".join(str(v) for v in value)))
    return pairs


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _raw_path(response: httpx.Response) -> str:
    return response.url.raw_path.decode("ascii").partition("?")[0]


class MetaStudioClient:
    """Async client over one keep-alive ``httpx.AsyncClient``; use as ``async with``."""

    def __init__(
        self,
        target: Target,
        credentials: Credentials,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        parallelism: int = 8,
        retry: RetryPolicy | None = None,
    ) -> None:
        if parallelism < 1:
            raise ConfigError("parallelism must be at least 1")
        self.target = target
        self.parallelism = parallelism
        self.retry = retry or RetryPolicy(max_retries=target.max_retries)
        self.pacer = Pacer(target.rate_limits)
        self._credentials = credentials
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(parallelism)
        self._sleep = asyncio.sleep  # the retry wait; replaceable so tests can observe it
        self._base = f"{target.endpoint.rstrip('/')}/v1/{quote(target.project_id, safe='')}"

    def __repr__(self) -> str:
        return (
            f"MetaStudioClient(target={self.target.name!r}, endpoint={self.target.endpoint!r}, "
            f"project_id={self.target.project_id!r}, auth={self._credentials.kind!r})"
        )

    async def __aenter__(self) -> Self:
        self._http = httpx.AsyncClient(
            auth=self._credentials.auth(self.target.project_id),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(self.target.timeout),
            limits=httpx.Limits(
                max_connections=self.parallelism, max_keepalive_connections=self.parallelism
            ),
            verify=self.target.verify_tls,
            transport=self._transport,
            follow_redirects=False,
            trust_env=True,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- the API --------------------------------------------------------------------------

    async def list_page(
        self,
        offset: int,
        limit: int = PAGE_SIZE,
        asset_ids: Sequence[str] | None = None,
        app_user_id: str | None = None,
        **filters: QueryValue,
    ) -> tuple[int, list[LiveAsset]]:
        """One ListAssets page: (total count matching the query, assets of this page)."""
        return await self._list(offset, limit, asset_ids, app_user_id, filters)

    async def _list(
        self,
        offset: int,
        limit: int,
        asset_ids: Sequence[str] | None,
        app_user_id: str | None,
        filters: Mapping[str, QueryValue],
    ) -> tuple[int, list[LiveAsset]]:
        params: dict[str, QueryValue] = {"limit": limit, "offset": offset, **filters}
        if asset_ids:
            params["asset_id"] = list(asset_ids)
        response = await self._request(
            "list", "GET", "/digital-assets", _query_pairs(params), None, app_user_id
        )
        data = self._json(response, "GET", "/digital-assets")
        items = data.get("assets") or []
        count = data.get("count", len(items))
        if not isinstance(items, list) or not isinstance(count, int):
            raise self._bad_body(response, "GET", "/digital-assets", "no assets list or count")
        return count, self._assets(items, response)

    async def list_all(
        self, app_user_id: str | None = None, **filters: QueryValue
    ) -> list[LiveAsset]:
        """Every asset matching ``filters``: the first page gives the count, the rest in parallel.

        Assets that shift between pages while they are read are de-duplicated by id.
        """
        count, first = await self._list(0, PAGE_SIZE, None, app_user_id, filters)
        pages = await self._gather(
            self._list(offset, PAGE_SIZE, None, app_user_id, filters)
            for offset in range(PAGE_SIZE, count, PAGE_SIZE)
        )
        seen: dict[str, LiveAsset] = {}
        for asset in [*first, *(a for _, page in pages for a in page)]:
            seen.setdefault(asset.asset_id, asset)
        return list(seen.values())

    async def fetch(
        self,
        asset_ids: Sequence[str],
        app_user_ids: Mapping[str, str | None] | None = None,
    ) -> dict[str, LiveAsset]:
        """The live assets among ``asset_ids``; an id that does not exist is simply absent."""
        groups: dict[str | None, list[str]] = {}
        for asset_id in dict.fromkeys(asset_ids):
            user = (app_user_ids or {}).get(asset_id)
            groups.setdefault(user, []).append(asset_id)
        calls = [
            self.list_page(0, PAGE_SIZE, asset_ids=chunk, app_user_id=user)
            for user, ids in groups.items()
            for chunk in _chunks(ids, PAGE_SIZE)
        ]
        wanted = set(asset_ids)
        found: dict[str, LiveAsset] = {}
        for _, page in await self._gather(calls):
            for asset in page:
                if asset.asset_id in wanted:
                    found.setdefault(asset.asset_id, asset)
        return found

    async def show(self, asset_id: str, app_user_id: str | None = None) -> LiveAsset:
        """One asset by id (ShowAsset); :class:`AssetNotFound` when it does not exist."""
        path = f"/digital-assets/{quote(asset_id, safe='')}"
        response = await self._request("show", "GET", path, [], None, app_user_id)
        data = self._json(response, "GET", path)
        return self._assets([data], response)[0]

    async def update(
        self, asset_id: str, body: Mapping[str, Any], app_user_id: str | None = None
    ) -> LiveAsset:
        """PUT the (minimal) update body; returns the asset as the service now has it."""
        path = f"/digital-assets/{quote(asset_id, safe='')}"
        content = json.dumps(body).encode("utf-8")
        response = await self._request("update", "PUT", path, [], content, app_user_id)
        data = self._json(response, "PUT", path)
        return self._assets([data], response)[0]

    # --- plumbing -------------------------------------------------------------------------

    async def _gather(self, calls: Iterable[Any]) -> list[Any]:
        """Run coroutines with at most ``parallelism`` in flight; the first failure cancels all."""

        async def bounded(coro: Any) -> Any:
            async with self._slots:
                return await coro

        coros = list(calls)
        if not coros:
            return []
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(bounded(c)) for c in coros]
        except BaseExceptionGroup as failures:
            raise unwrap(failures) from None
        return [t.result() for t in tasks]

    async def _request(
        self,
        api: str,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        content: bytes | None,
        app_user_id: str | None,
    ) -> httpx.Response:
        if self._http is None:
            raise RuntimeError("MetaStudioClient must be used as 'async with'")
        url = self._base + path + (f"?{canonical_query(query)}" if query else "")
        shown_path = f"/v1/{self.target.project_id}{path}"
        headers = {"Content-Type": "application/json"}
        if app_user_id:
            headers["X-App-UserId"] = app_user_id
        policy = self.retry
        deadline = time.monotonic() + policy.total_time
        attempt = 0
        while True:
            await self.pacer.acquire(api)
            started = time.monotonic()
            error: ApiError
            delay: float
            try:
                response = await self._http.request(method, url, headers=headers, content=content)
            except httpx.UnsupportedProtocol as exc:
                raise ConfigError(f"endpoint {self.target.endpoint}: {exc}") from None
            except httpx.TransportError as exc:
                log.debug(
                    "%s %s -> %s after %.3fs (attempt %d)",
                    method,
                    shown_path,
                    type(exc).__name__,
                    time.monotonic() - started,
                    attempt + 1,
                    extra=self._fields(method, shown_path, attempt + 1, error=type(exc).__name__),
                )
                error = self._unreachable(method, shown_path, exc, attempt + 1)
                delay = policy.backoff(attempt)
            else:
                request_id = response.headers.get("X-Request-Id")
                log.debug(
                    "%s %s -> %d request_id=%s %.3fs (attempt %d)",
                    method,
                    shown_path,
                    response.status_code,
                    request_id,
                    time.monotonic() - started,
                    attempt + 1,
                    extra=self._fields(
                        method,
                        shown_path,
                        attempt + 1,
                        status=response.status_code,
                        request_id=request_id,
                    ),
                )
                if response.status_code < 400:
                    return response
                error = error_for_status(
                    method=method,
                    path=shown_path,
                    status=response.status_code,
                    body=response.text,
                    request_id=request_id,
                )
                if isinstance(error, Throttled):
                    delay = policy.throttle(
                        retry_after_seconds(response.headers.get("Retry-After"))
                    )
                    self.pacer.pause(api, delay)
                elif isinstance(error, ServiceError):
                    delay = policy.backoff(attempt)
                else:
                    raise error
            attempt += 1
            if attempt > policy.max_retries or time.monotonic() + delay > deadline:
                raise error
            log.debug(
                "retrying %s %s in %.2fs: %s",
                method,
                shown_path,
                delay,
                error,
                extra=self._fields(method, shown_path, attempt + 1, delay=round(delay, 3)),
            )
            await self._sleep(delay)

    def _fields(self, method: str, path: str, attempt: int, **more: Any) -> dict[str, Any]:
        """Structured fields of a request's log lines (``--log-format json``)."""
        asset_id = path.rsplit("/digital-assets/", 1)[1] if "/digital-assets/" in path else None
        fields = {"target": self.target.name, "method": method, "path": path, "attempt": attempt}
        if asset_id:
            fields["asset_id"] = asset_id
        return {**fields, **more}

    def _unreachable(
        self, method: str, path: str, exc: httpx.TransportError, attempts: int
    ) -> ServiceUnreachable:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
        detail = str(exc) or type(exc).__name__
        return ServiceUnreachable(
            method=method,
            path=path,
            error_msg=f"{kind} ({detail}) after {attempts} attempt(s)",
            hint=(
                f"cannot reach MetaStudio at {self.target.endpoint}: check the region or "
                "--endpoint, network access and proxy settings"
            ),
        )

    def _json(self, response: httpx.Response, method: str, path: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise self._bad_body(response, method, path, "the response is not JSON") from None
        if not isinstance(data, dict):
            raise self._bad_body(response, method, path, "the response is not a JSON object")
        return data

    def _assets(self, items: list[Any], response: httpx.Response) -> list[LiveAsset]:
        """The assets of one response; each must be an object with a string ``asset_id``."""
        request_id = response.headers.get("X-Request-Id")
        where: tuple[str, str, int] | None = None
        out: list[LiveAsset] = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("asset_id"), str):
                method, path = response.request.method, _raw_path(response)
                if not isinstance(item, dict):
                    raise self._bad_body(response, method, path, "an asset is not an object")
                problem = (
                    "Field required"
                    if item.get("asset_id") is None
                    else ("Input should be a valid string")
                )
                raise self._bad_body(response, method, path, f"asset_id: {problem}")
            if where is None:
                where = (response.request.method, _raw_path(response), response.status_code)
            out.append(LiveAsset(item, request_id, where=where))
        return out

    @staticmethod
    def _bad_body(response: httpx.Response, method: str, path: str, problem: str) -> ServiceError:
        return ServiceError(
            method=method,
            path=path,
            status=response.status_code,
            error_msg=f"unexpected response: {problem}",
            request_id=response.headers.get("X-Request-Id"),
        )


__all__ = [
    "PAGE_SIZE",
    "ApiError",
    "CredentialsRejected",
    "LiveAsset",
    "MetaStudioClient",
    "RetryPolicy",
]
