"""One attempt of one request: send it, read the answer whole, and say what a failure means.

The client's request loop is three layers, as httpx's is: one attempt (this module's pieces,
put together by ``MetaStudioClient._attempt``), the retry decision
(:class:`reconciler.api.retry_policy.RetryBudget`), and the loop between them.  Nothing here
waits, retries or counts: an attempt ends in an :class:`Answer` (any status below 400) or a
:class:`Failure` that says whether another attempt may help and whether the request may have
reached the service.  A failure no attempt can fix in this run (an endpoint httpx cannot use, a
request that cannot be sent) is raised as a :class:`ConfigError` instead.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from reconciler.api.answers import read_bounded
from reconciler.api.config import LOOPBACK_HOSTS, Target
from reconciler.api.errors import (
    ApiError,
    ServiceError,
    ServiceUnreachable,
    Throttled,
    error_for_status,
    parse_error_body,
)
from reconciler.errors import ConfigError

# Failures in which the request cannot have left this machine: no connection was made.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Request:
    """One request as it is sent, and as errors and log lines name it."""

    api: str  # list, show, update: the pacer's and the metrics' name for it
    method: str
    url: str
    shown_path: str  # /v1/<project>/...: the path errors and logs show
    headers: Mapping[str, str]
    content: bytes | None


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
class Failure:
    """One attempt that did not succeed: the error to report if it is the last one.

    ``maybe_applied`` matters for writes only: the request may have reached the service and no
    answer says it was refused.  ``throttle_wait`` is set for a 429: the wait the service asked
    for (a 429 has its own budget, see :class:`reconciler.api.retry_policy.RetryPolicy`)."""

    error: ApiError
    retryable: bool  # another attempt may succeed
    maybe_applied: bool
    kind: str = ""  # what went wrong in a few words, for the retry summary ("HTTP 503")
    throttle_wait: float | None = None
    # Known at once and cheap to ask again: a loopback port that refused the connection (a
    # local emulator not started yet, or not at all).  Retried with short waits only.
    quick: bool = False

    @property
    def throttled(self) -> bool:
        return self.throttle_wait is not None


def transport_kind(exc: BaseException) -> str:
    """A short name for a failure below HTTP, as a person would say it."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if _refused(exc) else "connection failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "connection reset"
    return type(exc).__name__


async def send(http: httpx.AsyncClient, request: Request, target: Target) -> Answer:
    """Send ``request`` once within the target's total deadline, its body read up to the size
    limit.

    httpx's own timeouts bound each read separately, so a server sending one byte a second
    would never trip them; the deadline here bounds the attempt as a whole.
    """
    built = http.build_request(
        request.method, request.url, headers=request.headers, content=request.content
    )
    async with asyncio.timeout(target.timeout):
        response = await http.send(built, stream=True)
        try:
            body = await read_bounded(
                response.aiter_bytes(),
                target.max_response_mb,
                response.headers.get("Content-Length"),
            )
        finally:
            await response.aclose()
    return Answer(
        method=request.method,
        raw_path=response.url.raw_path.decode("ascii").partition("?")[0],
        status=response.status_code,
        headers=response.headers,
        body=body,
    )


def transport_failure(
    request: Request, exc: BaseException, target: Target, attempts: int
) -> Failure:
    """A failure below HTTP (``attempts``: this attempt's number, for the message).

    DNS and TLS failures are not retried (another attempt would fail the same way); a request
    that cannot be sent at all is a :class:`ConfigError`, raised."""
    permanent = _permanent(request.method, request.shown_path, exc, target)
    if isinstance(permanent, ConfigError):
        raise permanent from None
    if permanent is not None:
        return Failure(permanent, retryable=False, maybe_applied=False)
    kind = transport_kind(exc)
    host = urlsplit(target.endpoint).hostname or ""
    return Failure(
        _unreachable(request.method, request.shown_path, exc, attempts, target),
        retryable=True,
        maybe_applied=not isinstance(exc, _NOT_SENT),
        kind=kind,
        quick=kind == "connection refused" and host in LOOPBACK_HOSTS,
    )


def _refused(exc: BaseException) -> bool:
    """The connection was refused: nothing listens there.  httpx's asynchronous transport
    words it "All connection attempts failed"; the operating system's error below says it."""
    return any(
        isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower()
        for cause in _causes(exc)
    )


def status_failure(
    request: Request, answer: Answer, throttled: Callable[[Answer, ApiError], float]
) -> Failure:
    """An answer of status 400 or more; ``throttled`` is told of a 429 and says how long to wait.

    A 5xx is retried.  The service's own error body in it says the service handled the request
    and refused it; a 5xx without one (a gateway or proxy that gave up waiting) says nothing
    either way, so a write may have landed."""
    text = answer.body.decode("utf-8", "replace")
    error = error_for_status(
        method=request.method,
        path=request.shown_path,
        status=answer.status,
        body=text,
        request_id=answer.request_id,
    )
    if isinstance(error, Throttled):
        wait = throttled(answer, error)
        return Failure(error, retryable=True, maybe_applied=False, throttle_wait=wait)
    if isinstance(error, ServiceError):
        refused = parse_error_body(text)[0] is not None
        return Failure(
            error, retryable=True, maybe_applied=not refused, kind=f"HTTP {answer.status}"
        )
    return Failure(error, retryable=False, maybe_applied=False)


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


def _permanent(
    method: str, path: str, exc: BaseException, target: Target
) -> ServiceUnreachable | ConfigError | None:
    """A failure that another attempt cannot fix: DNS, TLS, a request that cannot be sent."""
    host = urlsplit(target.endpoint).hostname or target.endpoint
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
    method: str, path: str, exc: BaseException, attempts: int, target: Target
) -> ServiceUnreachable:
    if isinstance(exc, TimeoutError):
        kind = f"timed out (no complete answer within {target.timeout:g}s)"
    elif isinstance(exc, httpx.TimeoutException):
        kind = f"timed out ({exc or type(exc).__name__})"
    elif isinstance(exc, httpx.ConnectError) and _refused(exc):
        parts = urlsplit(target.endpoint)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        kind = f"connection refused by {parts.hostname}:{port} (nothing listens there)"
    else:
        kind = f"connection failed ({exc or type(exc).__name__})"
    return ServiceUnreachable(
        method=method,
        path=path,
        error_msg=f"{kind} after {attempts} attempt{'' if attempts == 1 else 's'}",
        hint=(
            f"cannot reach MetaStudio at {target.endpoint}: check the region or "
            "--endpoint, network access and proxy settings"
        ),
    )
