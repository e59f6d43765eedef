"""The async MetaStudio client: bulk reads through the list API, paced, retried, signed.

Live state is read in pages of 100 through ``ListAssets`` (by asset ids, grouped by
``X-App-UserId``), never one GET per asset.  Every request waits for its API's rate limiter.
Reads are retried here on 429, 5xx and transport failures, with backoff, within a bounded number
of attempts and a bounded total time (and never past the run's ``--timeout``): one attempt
(:mod:`reconciler.api.attempt`), the retry decision (:class:`RetryBudget`) and a thin loop
(:meth:`MetaStudioClient._request`).  Writes are not retried:
:meth:`MetaStudioClient.put_once` makes one attempt and says what is known about it
(:class:`PutFailure`), because every write attempt must follow a fresh read of its asset
(design.md 3.11), which only the apply loop can make.  Other answers fail at once with an
:class:`ApiError` subclass.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from reconciler import __version__, interrupts
from reconciler.api import tls
from reconciler.api.answers import AnswerTooLarge, BadJson, decode_json, non_finite_path
from reconciler.api.asset import LiveAsset
from reconciler.api.attempt import (
    Answer,
    Failure,
    Request,
    send,
    status_failure,
    transport_failure,
    transport_kind,
)
from reconciler.api.auth import Credentials
from reconciler.api.config import Target
from reconciler.api.errors import ApiError, CredentialsRejected, ServiceError
from reconciler.api.pacing import Pacer, service_limit
from reconciler.api.retries import RetryTally
from reconciler.api.retry_policy import RetryBudget, RetryPolicy, retry_after_seconds
from reconciler.api.signing import canonical_query
from reconciler.constants import PAGE_SIZE
from reconciler.errors import ConfigError, unwrap

log = logging.getLogger(__name__)

USER_AGENT = f"reconciler/{__version__}"
# ListAssets parameters that repeat their key per value; other lists are comma-separated.
REPEATED_QUERY_KEYS = frozenset({"asset_id", "accurate_query_field"})
QueryValue = str | int | bool | Sequence[str] | None
# Called once per attempt with the API name (list, show, update) and the HTTP status, or "error"
# when no answer came; ``reconciler watch`` counts them for its metrics.
AnswerObserver = Callable[[str, str], None]


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
        path = f"/digital-assets/{quote(asset_id, safe='')}"
        content = json.dumps(body).encode("utf-8")
        request = self._prepared("update", "PUT", path, [], content, app_user_id)
        outcome = await self._attempt(request, 1)
        if isinstance(outcome, Failure):
            return _put_failure(outcome, self.retry)
        where = (outcome.method, outcome.raw_path, outcome.status)
        try:
            return LiveAsset(self._json(outcome), outcome.request_id, where=where)
        except ServiceError as unreadable:  # accepted, but the answer cannot be read
            return PutFailure(
                unreadable, retryable=False, maybe_applied=True, kind="unreadable answer"
            )

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
        """A read with its retries: one attempt at a time, each failure judged by the request's
        :class:`RetryBudget`, the wait it decides slept here."""
        request = self._prepared(api, method, path, query, content, app_user_id)
        budget = RetryBudget.starting(self.retry, time.monotonic(), interrupts.remaining())
        throttled = False  # the last attempt got a 429: the next one keeps its place
        while True:
            await self.pacer.acquire(api, retry=throttled)
            outcome = await self._attempt(request, budget.attempt)
            if isinstance(outcome, Answer):
                return outcome
            wait = budget.wait_after(outcome, time.monotonic())
            if wait is None:
                raise outcome.error
            self._log_retry(request, outcome, wait, budget.attempt)
            throttled = outcome.throttled
            if not throttled:
                self.tally.retry(outcome.kind, first=budget.failures == 1)
            await self._sleep(wait)

    async def _attempt(self, request: Request, number: int) -> Answer | Failure:
        """One attempt (``number``, for logs and messages): the answer if its status is below
        400, else what went wrong.  Each attempt is logged and told to ``on_answer``."""
        assert self._http is not None
        started = time.monotonic()
        self.tally.attempt(request.api)
        try:
            answer = await send(self._http, request, self.target)
        except httpx.UnsupportedProtocol as exc:
            raise ConfigError(f"endpoint {self.target.endpoint}: {exc}") from None
        except AnswerTooLarge as exc:  # an answer came; the same request would get it again
            too_large = ServiceError(
                method=request.method, path=request.shown_path, error_msg=str(exc)
            )
            return Failure(too_large, retryable=False, maybe_applied=True, kind="answer too large")
        except (httpx.TransportError, TimeoutError) as exc:
            self._on_answer(request.api, "error")
            self._log_attempt(request, started, number, error=type(exc).__name__)
            return transport_failure(request, exc, self.target, number)
        self._on_answer(request.api, str(answer.status))
        self._log_attempt(request, started, number, answer=answer)
        if answer.status >= 400:
            return status_failure(request, answer, functools.partial(self._throttled, request.api))
        self.pacer.succeeded(request.api)
        return answer

    def _prepared(
        self,
        api: str,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        content: bytes | None,
        app_user_id: str | None,
    ) -> Request:
        if self._http is None:
            raise RuntimeError("MetaStudioClient must be used as 'async with'")
        headers = {"Content-Type": "application/json"}
        if app_user_id:
            headers["X-App-UserId"] = app_user_id
        return Request(
            api=api,
            method=method,
            url=self._base + path + (f"?{canonical_query(query)}" if query else ""),
            shown_path=f"/v1/{self.target.project_id}{path}",
            headers=headers,
            content=content,
        )

    def _throttled(self, api: str, answer: Answer, error: ApiError) -> float:
        """A 429: how long to wait; the API's pacer slows down and pauses for that long."""
        delay = self.retry.throttle(retry_after_seconds(answer.headers.get("Retry-After")))
        limit = service_limit(error.error_msg or "")
        self.pacer.throttled(api, delay, limit)
        self.tally.throttle(delay, limit=limit, api=api)
        return delay

    def _log_attempt(
        self,
        request: Request,
        started: float,
        attempt: int,
        *,
        answer: Answer | None = None,
        error: str | None = None,
    ) -> None:
        method, path = request.method, request.shown_path
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

    def _log_retry(self, request: Request, failure: Failure, wait: float, attempt: int) -> None:
        method, path = request.method, request.shown_path
        log.debug(
            "retrying %s %s in %.2fs: %s",
            method,
            path,
            wait,
            failure.error,
            extra=self._fields(method, path, attempt, delay=round(wait, 3)),
        )

    def _fields(self, method: str, path: str, attempt: int, **more: Any) -> dict[str, Any]:
        """Structured fields of a request's log lines (``--log-format json``)."""
        asset_id = path.rsplit("/digital-assets/", 1)[1] if "/digital-assets/" in path else None
        fields = {"target": self.target.name, "method": method, "path": path, "attempt": attempt}
        if asset_id:
            fields["asset_id"] = asset_id
        return {**fields, **more}

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


def _put_failure(failure: Failure, policy: RetryPolicy) -> PutFailure:
    """A write attempt's failure as apply reads it: with the wait before another attempt."""
    if failure.throttle_wait is not None:
        return PutFailure(
            failure.error,
            retryable=True,
            maybe_applied=False,
            wait=failure.throttle_wait,
            throttled=True,
        )
    return PutFailure(
        failure.error,
        retryable=failure.retryable,
        maybe_applied=failure.maybe_applied,
        wait=policy.backoff(0) if failure.retryable else 0.0,
        kind=failure.kind,
    )


__all__ = [
    "PAGE_SIZE",
    "AnswerObserver",
    "ApiError",
    "CredentialsRejected",
    "LiveAsset",
    "MetaStudioClient",
    "PutFailure",
    "RetryPolicy",
    "retry_after_seconds",
    "transport_kind",
]
