"""The async MetaStudio client: bulk reads through the list API, paced, retried, signed.

Live state is read in pages of 100 through ``ListAssets`` (by asset ids, grouped by
``X-App-UserId``), never one GET per asset.  Every request waits for its API's rate limiter.
Reads are retried here on 429, 5xx and transport failures, with backoff, within a bounded number
of attempts and a bounded total time (and never past the run's ``--timeout``).  Writes are not:
:meth:`MetaStudioClient.put_once` makes one attempt and says what is known about it
(:class:`PutFailure`), because every write attempt must follow a fresh read of its asset
(design.md 3.11), which only the apply loop can make.  Other answers fail at once with an
:class:`ApiError` subclass.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import itertools
import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote, urlsplit

import httpx

from reconciler import __version__, interrupts
from reconciler.api import tls
from reconciler.api.answers import (
    AnswerTooLarge,
    BadJson,
    decode_json,
    non_finite_path,
    read_bounded,
)
from reconciler.api.auth import Credentials
from reconciler.api.config import Target
from reconciler.api.errors import (
    ApiError,
    CredentialsRejected,
    ServiceError,
    ServiceUnreachable,
    Throttled,
    error_for_status,
    parse_error_body,
)
from reconciler.api.pacing import Pacer, service_limit
from reconciler.api.retries import RetryTally
from reconciler.api.signing import canonical_query
from reconciler.errors import ConfigError, unwrap

if TYPE_CHECKING:
    from pydantic import ValidationError

    from reconciler.api.models import DigitalAssetInfo

log = logging.getLogger(__name__)

PAGE_SIZE = 100
USER_AGENT = f"reconciler/{__version__}"
# ListAssets parameters that repeat their key per value; other lists are comma-separated.
REPEATED_QUERY_KEYS = frozenset({"asset_id", "accurate_query_field"})
QueryValue = str | int | bool | Sequence[str] | None
# Called once per attempt with the API name (list, show, update) and the HTTP status, or "error"
# when no answer came; ``reconciler watch`` counts them for its metrics.
AnswerObserver = Callable[[str, str], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How failed attempts are retried; the delays are parameters so tests can shrink them."""

    max_retries: int = 5  # failures (5xx, transport) retried per request
    # 429s waited out per request: they do not use up the failure budget (the service asked us
    # to wait, not to give up); this and total_time (and the run's deadline) bound them.
    max_throttled: int = 30
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
        # Why this asset cannot be used (a NaN in it): the reader reports it as that asset's error.
        self.problem: str | None = None
        self._where = where  # (method, path, status) of the response, for a bad-body error

    def __repr__(self) -> str:
        return f"LiveAsset(asset_id={self.asset_id!r}, request_id={self.request_id!r})"

    @property
    def asset_id(self) -> str:
        asset_id: str = self.raw["asset_id"]
        return asset_id

    def problem_error(self) -> ServiceError | None:
        """The error that stands for :attr:`problem` (this asset alone is unusable), if any."""
        if self.problem is None:
            return None
        return self._unexpected(f"asset {self.asset_id}: {self.problem}")

    @functools.cached_property
    def info(self) -> DigitalAssetInfo:
        """The lenient typed view; a value it cannot read is a :class:`ServiceError`.

        The models are imported here, when a typed view is first asked for: a plan diffs the
        raw JSON and never needs them."""
        from pydantic import ValidationError

        from reconciler.api.models import DigitalAssetInfo

        try:
            return DigitalAssetInfo.model_validate(self.raw)
        except ValidationError as exc:
            raise self._unexpected(_first_error(exc)) from None

    def _unexpected(self, problem: str) -> ServiceError:
        method, path, status = self._where or ("GET", "", 200)
        return ServiceError(
            method=method,
            path=path,
            status=status,
            error_msg=f"unexpected response: {problem}",
            request_id=self.request_id,
        )


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


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """``exc`` and the exceptions it was raised from (httpx wraps httpcore wraps the OS error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _ssl_reason(error: ssl.SSLError) -> str:
    return str(getattr(error, "reason", None) or error.strerror or error)


@dataclass
class Answer:
    """One HTTP answer, its body read whole (and bounded)."""

    method: str
    raw_path: str
    status: int
    headers: httpx.Headers
    body: bytes
    non_finite: bool = False  # the JSON holds NaN or Infinity somewhere

    @property
    def request_id(self) -> str | None:
        request_id: str | None = self.headers.get("X-Request-Id")
        return request_id


@dataclass(frozen=True)
class PutFailure:
    """One PUT attempt that did not succeed, and what is known about it.

    ``maybe_applied`` is True when the request may have reached the service and no answer says
    it was refused (a connection lost after sending, a timeout, a 5xx without the service's
    error body): only reading the asset back tells whether it landed.  A 429 (decided by the
    gateway before the service) and a connection that was never made are known not to have
    landed.  ``wait`` is how long to wait before another attempt: the ``Retry-After`` the
    service asked for, or a back-off; ``retryable`` says whether another attempt may help."""

    error: ApiError
    retryable: bool
    maybe_applied: bool
    wait: float = 0.0
    throttled: bool = False
    kind: str = ""  # what went wrong in a few words, for the retry summary ("HTTP 503")


# Failures in which the request cannot have left this machine: no connection was made.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def transport_kind(exc: BaseException) -> str:
    """A short name for a failure below HTTP, as a person would say it."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else "connection failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "connection reset"
    return type(exc).__name__


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
        on_answer: AnswerObserver | None = None,
        tally: RetryTally | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        if parallelism < 1:
            raise ConfigError("parallelism must be at least 1")
        self.target = target
        self.parallelism = parallelism
        self.retry = retry or RetryPolicy(max_retries=target.max_retries)
        # The service's limits are per tenant: clients of one target in one run share a pacer
        # (``pacer``), or a plan's reads and the apply's fresh reads after them would each
        # spend a full burst the service has already counted.
        self.pacer = pacer if pacer is not None else Pacer(target.rate_limits)
        self.tally = tally if tally is not None else RetryTally()  # what was retried, by kind
        self._credentials = credentials
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(parallelism)
        self._sleep = asyncio.sleep  # the retry wait; replaceable so tests can observe it
        self._on_answer = on_answer or (lambda _api, _code: None)
        self._base = f"{target.endpoint.rstrip('/')}/v1/{quote(target.project_id, safe='')}"

    def __repr__(self) -> str:
        return (
            f"MetaStudioClient(target={self.target.name!r}, endpoint={self.target.endpoint!r}, "
            f"project_id={self.target.project_id!r}, auth={self._credentials.kind!r})"
        )

    async def __aenter__(self) -> Self:
        from reconciler.api.proxy import check_proxy_environment

        check_proxy_environment()  # a proxy httpx cannot use: an error naming the variable
        self._http = httpx.AsyncClient(
            auth=self._credentials.auth(self.target.project_id),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(self.target.timeout),
            limits=httpx.Limits(
                max_connections=self.parallelism, max_keepalive_connections=self.parallelism
            ),
            verify=tls.verified_context() if self.target.verify_tls else False,
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
        answer = await self._request(
            "list", "GET", "/digital-assets", _query_pairs(params), None, app_user_id
        )
        data = self._json(answer)
        items = data.get("assets") or []
        count = data.get("count", len(items) if isinstance(items, list) else 0)
        if not isinstance(items, list) or type(count) is not int or count < 0:
            raise self._bad_body(answer, "no assets list or count")
        if len(items) > limit:
            raise self._bad_body(answer, f"{len(items)} assets in a page of at most {limit}")
        return count, self._assets(items, answer)

    async def list_all(
        self, app_user_id: str | None = None, **filters: QueryValue
    ) -> list[LiveAsset]:
        """Every asset matching ``filters``: the first page gives the count, the rest follow in
        rounds of at most ``parallelism`` pages.

        ``count`` is a hint, not a limit.  Paging goes on past it, one page, then two, four...
        at once, for as long as the pages come back full (a count lower than the rows, or rows
        added while the project is paged); it ends at the first empty page, or at a short one
        once ``count`` explains no further page.  It is bounded by the answers: a full page
        that holds only assets already seen is an error (a service that repeats itself would
        otherwise be paged for ever), and no offset past the service's maximum is asked for.
        Assets that shift between pages while they are read are de-duplicated by id; one that
        shifts off every page is not returned (callers that need it read it by id).
        """
        last_offset = 2**31 - 1  # the reference's maximum offset
        count, first = await self._list(0, PAGE_SIZE, None, app_user_id, filters)
        seen: dict[str, LiveAsset] = {}
        for asset in first:
            seen.setdefault(asset.asset_id, asset)
        offset = PAGE_SIZE
        past_count = itertools.count()  # rounds sent beyond what count explains
        more = bool(first) and (len(first) == PAGE_SIZE or count > PAGE_SIZE)
        while more and offset <= last_offset:
            explained = -(-(count - offset) // PAGE_SIZE)  # pages the count still promises
            width = explained if explained > 0 else 2 ** next(past_count)
            end = min(offset + min(width, self.parallelism) * PAGE_SIZE, last_offset + 1)
            window = list(range(offset, end, PAGE_SIZE))
            offset = window[-1] + PAGE_SIZE
            pages = await self._gather(
                self._list(o, PAGE_SIZE, None, app_user_id, filters) for o in window
            )
            for page_offset, (_, page) in zip(window, pages, strict=True):
                if not page:
                    more = False
                    continue
                new = [a for a in page if a.asset_id not in seen]
                if not new and len(page) == PAGE_SIZE:
                    raise ServiceError(
                        method="GET",
                        path=f"/v1/{self.target.project_id}/digital-assets",
                        error_msg=(
                            f"unexpected response: the page at offset {page_offset} repeats "
                            f"assets already read (count {count}); stopped paging"
                        ),
                    )
                for asset in new:
                    seen.setdefault(asset.asset_id, asset)
            more = more and (len(pages[-1][1]) == PAGE_SIZE or offset < count)
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
        answer = await self._request("show", "GET", path, [], None, app_user_id)
        return self._assets([self._json(answer)], answer)[0]

    async def update(
        self, asset_id: str, body: Mapping[str, Any], app_user_id: str | None = None
    ) -> LiveAsset:
        """One paced PUT of the (minimal) update body; the answer as it came, or the attempt's
        error.  Never retried: a retry must follow a fresh read (see :meth:`put_once`)."""
        await self.write_slot()
        outcome = await self.put_once(asset_id, body, app_user_id)
        if isinstance(outcome, PutFailure):
            raise outcome.error
        return outcome

    async def write_slot(self, *, retry: bool = False) -> None:
        """Wait for the update API's pacer; ``retry``: an attempt after a 429 keeps its place."""
        await self.pacer.acquire("update", retry=retry)

    async def put_once(
        self, asset_id: str, body: Mapping[str, Any], app_user_id: str | None = None
    ) -> LiveAsset | PutFailure:
        """Send one PUT attempt now (the caller took a :meth:`write_slot`): the service's answer
        as it came, or a :class:`PutFailure` saying whether it may have landed.

        The answer need not be a whole asset (the reference's own example answers with a few
        top-level fields): apply verifies it, and reads the asset back when it does not show
        the sent values.
        """
        if self._http is None:
            raise RuntimeError("MetaStudioClient must be used as 'async with'")
        path = f"/digital-assets/{quote(asset_id, safe='')}"
        shown_path = f"/v1/{self.target.project_id}{path}"
        headers = {"Content-Type": "application/json"}
        if app_user_id:
            headers["X-App-UserId"] = app_user_id
        content = json.dumps(body).encode("utf-8")
        started = time.monotonic()
        try:
            answer = await self._exchange("PUT", self._base + path, headers, content)
        except httpx.UnsupportedProtocol as exc:
            raise ConfigError(f"endpoint {self.target.endpoint}: {exc}") from None
        except AnswerTooLarge as exc:  # an answer came: the service took the request
            too_large = ServiceError(method="PUT", path=shown_path, error_msg=str(exc))
            return PutFailure(
                too_large, retryable=False, maybe_applied=True, kind="answer too large"
            )
        except (httpx.TransportError, TimeoutError) as exc:
            self._on_answer("update", "error")
            self._log_attempt("PUT", shown_path, started, 1, error=type(exc).__name__)
            permanent = self._permanent_failure("PUT", shown_path, exc)
            if isinstance(permanent, ConfigError):
                raise permanent from None
            if permanent is not None:
                return PutFailure(permanent, retryable=False, maybe_applied=False)
            sent = not isinstance(exc, _NOT_SENT)
            return PutFailure(
                self._unreachable("PUT", shown_path, exc, 1),
                retryable=True,
                maybe_applied=sent,
                wait=self.retry.backoff(0),
                kind=transport_kind(exc),
            )
        self._on_answer("update", str(answer.status))
        self._log_attempt("PUT", shown_path, started, 1, answer=answer)
        if answer.status < 400:
            self.pacer.succeeded("update")
            where = (answer.method, answer.raw_path, answer.status)
            try:
                return LiveAsset(self._json(answer), answer.request_id, where=where)
            except ServiceError as unreadable:  # accepted, but the answer cannot be read
                return PutFailure(
                    unreadable, retryable=False, maybe_applied=True, kind="unreadable answer"
                )
        text = answer.body.decode("utf-8", "replace")
        error = error_for_status(
            method="PUT",
            path=shown_path,
            status=answer.status,
            body=text,
            request_id=answer.request_id,
        )
        if isinstance(error, Throttled):
            wait = self._throttled("update", answer, error)
            return PutFailure(error, retryable=True, maybe_applied=False, wait=wait, throttled=True)
        if isinstance(error, ServiceError):
            # The service's own error body says it handled the request and refused it; a 5xx
            # without one (a gateway or proxy that gave up waiting) says nothing either way.
            refused = parse_error_body(text)[0] is not None
            return PutFailure(
                error,
                retryable=True,
                maybe_applied=not refused,
                wait=self.retry.backoff(0),
                kind=f"HTTP {answer.status}",
            )
        return PutFailure(error, retryable=False, maybe_applied=False)

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
    ) -> Answer:
        if self._http is None:
            raise RuntimeError("MetaStudioClient must be used as 'async with'")
        url = self._base + path + (f"?{canonical_query(query)}" if query else "")
        shown_path = f"/v1/{self.target.project_id}{path}"
        headers = {"Content-Type": "application/json"}
        if app_user_id:
            headers["X-App-UserId"] = app_user_id
        policy = self.retry
        deadline = time.monotonic() + policy.total_time
        run_left = interrupts.remaining()
        if run_left is not None:
            deadline = min(deadline, time.monotonic() + run_left)
        attempt = 0  # failed attempts that count against the retry budget (not 429s)
        waits = 0  # 429s waited out
        throttled = False
        while True:
            await self.pacer.acquire(api, retry=throttled)
            throttled = False
            started = time.monotonic()
            error: ApiError
            delay: float
            try:
                answer = await self._exchange(method, url, headers, content)
            except httpx.UnsupportedProtocol as exc:
                raise ConfigError(f"endpoint {self.target.endpoint}: {exc}") from None
            except AnswerTooLarge as exc:  # the same request would get the same answer
                raise ServiceError(method=method, path=shown_path, error_msg=str(exc)) from None
            except (httpx.TransportError, TimeoutError) as exc:
                self._on_answer(api, "error")
                self._log_attempt(
                    method, shown_path, started, attempt + 1, error=type(exc).__name__
                )
                permanent = self._permanent_failure(method, shown_path, exc)
                if permanent is not None:
                    raise permanent from None
                error = self._unreachable(method, shown_path, exc, attempt + 1)
                delay = policy.backoff(attempt)
                kind = transport_kind(exc)
            else:
                request_id = answer.request_id
                self._on_answer(api, str(answer.status))
                self._log_attempt(method, shown_path, started, attempt + 1, answer=answer)
                if answer.status < 400:
                    self.pacer.succeeded(api)
                    return answer
                error = error_for_status(
                    method=method,
                    path=shown_path,
                    status=answer.status,
                    body=answer.body.decode("utf-8", "replace"),
                    request_id=request_id,
                )
                if isinstance(error, Throttled):
                    delay = self._throttled(api, answer, error)
                    kind = "throttled"
                    throttled = True
                elif isinstance(error, ServiceError):
                    delay = policy.backoff(attempt)
                    kind = f"HTTP {answer.status}"
                else:
                    raise error
            # A 429 asks to wait, not to give up: the deadline bounds it, not the retry budget.
            attempt += 0 if throttled else 1
            waits += 1 if throttled else 0
            over = attempt > policy.max_retries or waits > policy.max_throttled
            if over or time.monotonic() + delay > deadline:
                raise error
            log.debug(
                "retrying %s %s in %.2fs: %s",
                method,
                shown_path,
                delay,
                error,
                extra=self._fields(method, shown_path, attempt + 1, delay=round(delay, 3)),
            )
            if kind != "throttled":
                self.tally.retry(kind)
            await self._sleep(delay)

    def _throttled(self, api: str, answer: Answer, error: ApiError) -> float:
        """A 429: how long to wait; the API's pacer slows down and pauses for that long."""
        delay = self.retry.throttle(retry_after_seconds(answer.headers.get("Retry-After")))
        limit = service_limit(error.error_msg or "")
        self.pacer.throttled(api, delay, limit)
        self.tally.throttle(delay, limit=limit, api=api)
        return delay

    def _log_attempt(
        self,
        method: str,
        path: str,
        started: float,
        attempt: int,
        *,
        answer: Answer | None = None,
        error: str | None = None,
    ) -> None:
        elapsed = time.monotonic() - started
        if answer is not None:
            log.debug(
                "%s %s -> %d request_id=%s %.3fs (attempt %d)",
                method,
                path,
                answer.status,
                answer.request_id,
                elapsed,
                attempt,
                extra=self._fields(
                    method, path, attempt, status=answer.status, request_id=answer.request_id
                ),
            )
        else:
            log.debug(
                "%s %s -> %s after %.3fs (attempt %d)",
                method,
                path,
                error,
                elapsed,
                attempt,
                extra=self._fields(method, path, attempt, error=error),
            )

    def _fields(self, method: str, path: str, attempt: int, **more: Any) -> dict[str, Any]:
        """Structured fields of a request's log lines (``--log-format json``)."""
        asset_id = path.rsplit("/digital-assets/", 1)[1] if "/digital-assets/" in path else None
        fields = {"target": self.target.name, "method": method, "path": path, "attempt": attempt}
        if asset_id:
            fields["asset_id"] = asset_id
        return {**fields, **more}

    async def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None
    ) -> Answer:
        """One attempt within the target's total deadline, its body read up to the size limit.

        httpx's own timeouts bound each read separately, so a server sending one byte a second
        would never trip them; the deadline here bounds the attempt as a whole.
        """
        assert self._http is not None
        request = self._http.build_request(method, url, headers=headers, content=content)
        async with asyncio.timeout(self.target.timeout):
            response = await self._http.send(request, stream=True)
            try:
                body = await read_bounded(
                    response.aiter_bytes(),
                    self.target.max_response_mb,
                    response.headers.get("Content-Length"),
                )
            finally:
                await response.aclose()
        return Answer(
            method=method,
            raw_path=_raw_path(response),
            status=response.status_code,
            headers=response.headers,
            body=body,
        )

    def _permanent_failure(
        self, method: str, path: str, exc: BaseException
    ) -> ServiceUnreachable | ConfigError | None:
        """A failure that another attempt cannot fix: DNS, TLS, a request that cannot be sent."""
        host = urlsplit(self.target.endpoint).hostname or self.target.endpoint
        if isinstance(exc, httpx.LocalProtocolError):
            return ConfigError(f"{method} {path}: the request could not be sent: {exc}")
        for cause in _causes(exc):
            if isinstance(cause, socket.gaierror):
                reason = cause.strerror or str(cause)
                return ServiceUnreachable(
                    method=method,
                    path=path,
                    error_msg=f"cannot resolve host {host} ({reason}); not retried",
                    hint="check the region or --endpoint and the DNS settings",
                )
            if isinstance(cause, ssl.SSLCertVerificationError):
                reason = getattr(cause, "verify_message", None) or _ssl_reason(cause)
                return ServiceUnreachable(
                    method=method,
                    path=path,
                    error_msg=f"TLS certificate of {host} not accepted ({reason}); not retried",
                    hint=(
                        "check the endpoint and the system's CA certificates "
                        "(SSL_CERT_FILE); verify_tls: false turns verification off"
                    ),
                )
            if isinstance(cause, ssl.SSLError):
                reason = _ssl_reason(cause)
                return ServiceUnreachable(
                    method=method,
                    path=path,
                    error_msg=f"TLS handshake with {host} failed ({reason}); not retried",
                    hint="check that the endpoint speaks https (or use http:// for a local one)",
                )
        return None

    def _unreachable(
        self, method: str, path: str, exc: BaseException, attempts: int
    ) -> ServiceUnreachable:
        if isinstance(exc, TimeoutError):
            kind = f"timed out (no complete answer within {self.target.timeout:g}s)"
        elif isinstance(exc, httpx.TimeoutException):
            kind = f"timed out ({exc or type(exc).__name__})"
        else:
            kind = f"connection failed ({exc or type(exc).__name__})"
        return ServiceUnreachable(
            method=method,
            path=path,
            error_msg=f"{kind} after {attempts} attempt{'' if attempts == 1 else 's'}",
            hint=(
                f"cannot reach MetaStudio at {self.target.endpoint}: check the region or "
                "--endpoint, network access and proxy settings"
            ),
        )

    def _json(self, answer: Answer) -> dict[str, Any]:
        try:
            data, non_finite = decode_json(answer.body)
        except BadJson as exc:
            raise self._bad_body(answer, str(exc)) from None
        if not isinstance(data, dict):
            raise self._bad_body(answer, "the response is not a JSON object")
        answer.non_finite = non_finite
        return data

    def _assets(self, items: list[Any], answer: Answer) -> list[LiveAsset]:
        """The assets of one response; each must be an object with a string ``asset_id``.

        An asset holding a non-finite number (NaN, Infinity) is kept with its ``problem`` set,
        so that it, and only it, is reported as an error."""
        where = (answer.method, answer.raw_path, answer.status)
        out: list[LiveAsset] = []
        for item in items:
            if not isinstance(item, dict):
                raise self._bad_body(answer, "an asset is not an object")
            if not isinstance(item.get("asset_id"), str):
                problem = (
                    "Field required"
                    if item.get("asset_id") is None
                    else ("Input should be a valid string")
                )
                raise self._bad_body(answer, f"asset_id: {problem}")
            asset = LiveAsset(item, answer.request_id, where=where)
            if answer.non_finite:
                bad = non_finite_path(item)
                if bad is not None:
                    asset.problem = f"{bad} is not a finite number (NaN or Infinity)"
            out.append(asset)
        return out

    @staticmethod
    def _bad_body(answer: Answer, problem: str) -> ServiceError:
        return ServiceError(
            method=answer.method,
            path=answer.raw_path,
            status=answer.status,
            error_msg=f"unexpected response: {problem}",
            request_id=answer.request_id,
        )


__all__ = [
    "PAGE_SIZE",
    "ApiError",
    "CredentialsRejected",
    "LiveAsset",
    "MetaStudioClient",
    "PutFailure",
    "RetryPolicy",
]
