"""The emulator's ASGI app: a gateway layer (faults, auth, throttling, request log) in front of
the three digital-asset routes (list, show, update)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.emulator import errors
from reconciler.emulator.auth import authenticate, check_project, query_pairs
from reconciler.emulator.body import BodyProblems, check_body
from reconciler.emulator.config import (
    SHORT_ANSWER_FIELDS,
    EmulatorConfig,
    LostAnswer,
    PutFault,
    TimedEdit,
)
from reconciler.emulator.errors import ApiError
from reconciler.emulator.ratelimit import RateLimiter, retry_after_header
from reconciler.emulator.recorder import RequestRecorder, body_for_log, safe_headers
from reconciler.emulator.store import AssetQuery, AssetStore, omit_paths
from reconciler.emulator.times import format_time
from reconciler.emulator.update import UpdateOutcome, apply_update

log = logging.getLogger("reconciler.emulator")

_COLLECTION = re.compile(r"^/v1/([^/]+)/digital-assets/?$")
_ITEM = re.compile(r"^/v1/([^/]+)/digital-assets/([^/]+)$")
_PROJECT = re.compile(r"^/v1/([^/]+)/")
MAX_OFFSET = 2147483647
Asset = dict[str, Any]
_Fault = TypeVar("_Fault", PutFault, LostAnswer)


class ConnectionDropped(Exception):
    """Raised instead of dropping when the server gives no transport to abort (in-process use)."""


@dataclass
class EmulatorState:
    """What the running app shares between requests; tests change faults and limits live."""

    config: EmulatorConfig
    store: AssetStore
    limiter: RateLimiter
    recorder: RequestRecorder | None
    rng: random.Random = field(default_factory=random.Random)
    fired_edits: set[int] = field(default_factory=set)  # indexes of Behaviour.edits_on_put
    # How often each of Behaviour.put_faults / .lost_answers has fired, by index; and the
    # indexes of Behaviour.timed_edits already scheduled.
    put_faults_used: dict[int, int] = field(default_factory=dict)
    lost_answers_used: dict[int, int] = field(default_factory=dict)
    fired_timed_edits: set[int] = field(default_factory=set)


def classify(method: str, path: str) -> str | None:
    """Which throttled API a request is (list/show/update), or None."""
    if method == "GET" and _COLLECTION.match(path):
        return "list"
    if _ITEM.match(path):
        return {"GET": "show", "PUT": "update"}.get(method)
    return None


def error_response(error: ApiError, request_id: str) -> JSONResponse:
    body: dict[str, str] = {"error_code": error.code, "error_msg": error.message}
    if error.gateway:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=error.status, headers=error.headers)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _drop_connection(scope: Scope) -> None:
    """Close the client's connection without any response, as a network failure would."""
    raw_send = scope.get("emulator.raw_send")
    transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionDropped("connection dropped by fault injection")
    transport.abort()
    # Let the server notice the disconnect before we return, so it sends nothing.
    for _ in range(3):
        await asyncio.sleep(0)


class _Exchange:
    """One request through the gateway: its log entry, the request id added to the response,
    and the already-read body handed on to the service."""

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, body: bytes, state: EmulatorState
    ) -> None:
        self.scope = scope
        self.request_id = uuid.uuid4().hex
        scope["emulator.request_id"] = self.request_id
        self._receive = receive
        self._send = send
        self._body: bytes | None = body
        self._recorder = state.recorder
        self._status: int | None = None
        self._error_chunks: list[bytes] = []
        self._written = False
        self.entry: dict[str, Any] = {
            "time": format_time(datetime.now(UTC)),
            "method": scope["method"],
            "path": scope["path"],
            "query": [list(pair) for pair in query_pairs(scope.get("query_string", b""))],
            "headers": safe_headers(scope.get("headers", [])),
            "body": body_for_log(body),
            "status": None,
            "request_id": self.request_id,
        }

    def finish(self) -> None:
        """Log the request once, before the client can see the end of the response."""
        if self._written:
            return
        self._written = True
        entry = self.entry
        entry["status"] = self._status
        if self._error_chunks:
            answer = body_for_log(b"".join(self._error_chunks))
            if isinstance(answer, dict) and "error_code" in answer:
                entry["error_code"] = answer["error_code"]
        if "emulator.ignored" in self.scope:
            entry["ignored"] = self.scope["emulator.ignored"]
        if "emulator.edited" in self.scope:
            entry["edited"] = self.scope["emulator.edited"]
        log.info("%s %s -> %s (%s)", entry["method"], entry["path"], self._status, self.request_id)
        if self._recorder is not None:
            self._recorder.write(entry)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._status = message["status"]
            message["headers"] = [
                *message.get("headers", []),
                (b"x-request-id", self.request_id.encode()),
            ]
        elif message["type"] == "http.response.body":
            if (self._status or 200) >= 400:
                self._error_chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.finish()
        await self._send(message)

    async def receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        return await self._receive()


class Gateway:
    """ASGI middleware doing what the API gateway does before a request reaches the service:
    request ids and the request log, injected faults, authentication, throttling."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        exchange = _Exchange(scope, receive, send, body, self.state)
        try:
            await self._injected_latency()
            if self._injected_drop():
                exchange.entry["dropped"] = True
                exchange.finish()
                await _drop_connection(scope)
                return
            try:
                self._admit(scope, body)
                self._injected_failure()
                fault = _take(
                    self.state.config.behaviour.put_faults, self.state.put_faults_used, scope
                )
                if fault is not None:
                    exchange.entry["injected"] = f"put fault {fault.status}"
                    if fault.empty:
                        await Response(status_code=fault.status)(
                            scope, exchange.receive, exchange.send
                        )
                        return
                    raise _put_fault_error(fault)
            except ApiError as error:
                respond = error_response(error, exchange.request_id)
                await respond(scope, exchange.receive, exchange.send)
                return
            lost = _take(
                self.state.config.behaviour.lost_answers, self.state.lost_answers_used, scope
            )
            if lost is not None:
                await self._lose_answer(lost, scope, exchange)
                return
            await self.app(scope, exchange.receive, exchange.send)
        finally:
            exchange.finish()
            self._schedule_timed_edits(scope)

    async def _lose_answer(self, lost: LostAnswer, scope: Scope, exchange: _Exchange) -> None:
        """Let the service apply the request, then lose its answer the way ``lost`` says."""
        answer: list[Message] = []

        async def keep(message: Message) -> None:
            answer.append(message)

        await self.app(scope, exchange.receive, keep)
        exchange.entry["answer_lost"] = lost.mode
        exchange.entry["applied_status"] = next(
            (m["status"] for m in answer if m["type"] == "http.response.start"), None
        )
        if lost.mode == "drop":
            exchange.finish()
            await _drop_connection(scope)
        elif lost.mode == "gateway":
            await Response(status_code=504)(scope, exchange.receive, exchange.send)
        else:
            await asyncio.sleep(lost.seconds)
            for message in answer:
                await exchange.send(message)

    def _schedule_timed_edits(self, scope: Scope) -> None:
        """Start the out-of-band edits that this (answered) request triggers."""
        state = self.state
        item = _ITEM.match(scope["path"])
        target = item.group(2) if item else None
        if item is None and not _COLLECTION.match(scope["path"]):
            return
        for index, edit in enumerate(state.config.behaviour.timed_edits):
            if index in state.fired_timed_edits or edit.method != scope["method"]:
                continue
            if edit.after != target:
                continue
            state.fired_timed_edits.add(index)
            asyncio.get_running_loop().call_later(edit.delay, _timed_edit, state, edit)

    # --- faults ---------------------------------------------------------------------------------

    async def _injected_latency(self) -> None:
        faults, rng = self.state.config.faults, self.state.rng
        delay = faults.latency_ms + (rng.uniform(0, faults.jitter_ms) if faults.jitter_ms else 0)
        if delay > 0:
            await asyncio.sleep(delay / 1000)

    def _injected_drop(self) -> bool:
        rate = self.state.config.faults.drop_rate
        return bool(rate) and self.state.rng.random() < rate

    def _injected_failure(self) -> None:
        rate = self.state.config.faults.fail_rate
        if rate and self.state.rng.random() < rate:
            raise ApiError(500, errors.INTERNAL_ERROR, "Internal error (injected fault)")

    # --- admission ------------------------------------------------------------------------------

    def _admit(self, scope: Scope, body: bytes) -> None:
        """Authentication, the caller's project, then the per-API rate limit."""
        method: str = scope["method"]
        path: str = scope["path"]
        raw_path = scope.get("raw_path", path.encode()).decode("latin-1")
        config = self.state.config
        authenticate(
            config, method, raw_path, scope.get("query_string", b""), Headers(scope=scope), body
        )
        project = _PROJECT.match(path)
        if project:
            check_project(config, project.group(1))
        self._throttle(classify(method, path))

    def _throttle(self, api: str | None) -> None:
        if api is None:
            return
        wait = self.state.limiter.acquire(api)
        if wait is not None:
            limit = self.state.limiter.limit_of(api)
            raise ApiError(
                429,
                errors.THROTTLED,
                "The throttling threshold has been reached: policy user over ratelimit,"
                f"limit:{limit:g},time:1 second",
                headers={"Retry-After": retry_after_header(wait)},
                gateway=True,
            )


def _take(faults: Sequence[_Fault], used: dict[int, int], scope: Scope) -> _Fault | None:
    """The first of ``faults`` that applies to this request (a PUT to its asset) and has not
    fired its ``times`` yet; counted as fired."""
    item = _ITEM.match(scope["path"]) if scope["method"] == "PUT" else None
    if item is None:
        return None
    for index, fault in enumerate(faults):
        if fault.asset_id not in (None, item.group(2)) or used.get(index, 0) >= fault.times:
            continue
        used[index] = used.get(index, 0) + 1
        return fault
    return None


def _put_fault_error(fault: PutFault) -> ApiError:
    if fault.status == 429:
        return ApiError(
            429,
            errors.THROTTLED,
            "The throttling threshold has been reached: policy user over ratelimit,"
            "limit:10,time:1 second",
            headers=(
                {}
                if fault.retry_after is None
                else {"Retry-After": retry_after_header(fault.retry_after)}
            ),
            gateway=True,
        )
    return ApiError(fault.status, errors.INTERNAL_ERROR, "Internal error (injected fault)")


def _timed_edit(state: EmulatorState, edit: TimedEdit) -> None:
    try:
        state.store.patch(edit.asset_id, dict(edit.changes))
    except KeyError:
        return
    log.info("timed out-of-band edit of %s", edit.asset_id)


# --- the service --------------------------------------------------------------------------------


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(
            400,
            errors.INVALID_PARAMETER,
            f"Invalid parameter: {name} must be an integer from {low} to {high}",
        )
    return value


def _csv(request: Request, name: str) -> list[str]:
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


async def list_assets(request: Request) -> Response:
    params = request.query_params
    sort_dir = params.get("sort_dir", "asc")
    sort_key = params.get("sort_key", "create_time")
    if sort_dir not in ("asc", "desc") or sort_key not in (
        "create_time",
        "update_time",
        "asset_order",
    ):
        raise ApiError(400, errors.INVALID_PARAMETER, "Invalid parameter: sort_key or sort_dir")
    state = _state(request)
    if state.config.behaviour.ignore_sort_key:
        sort_key = "create_time"
    combination = params.get("tag_combination_type", "UNION_SET")
    if combination not in ("UNION_SET", "INTERSECTION"):
        raise ApiError(400, errors.INVALID_PARAMETER, "Invalid parameter: tag_combination_type")
    query = AssetQuery(
        asset_ids=_csv(request, "asset_id"),
        name=params.get("name") or None,
        tags=_csv(request, "tag"),
        tag_intersection=combination == "INTERSECTION",
        asset_types=_csv(request, "asset_type"),
        asset_states=_csv(request, "asset_state"),
        sort_key=sort_key,
        descending=sort_dir == "desc",
        limit=_int_param(request, "limit", 10, 1, 100),
        offset=_int_param(request, "offset", 0, 0, MAX_OFFSET),
    )
    if not query.asset_ids:
        _mutate_on_list(state, query.offset)
    count, assets = state.store.query(query)
    behaviour = state.config.behaviour
    if behaviour.list_omit:  # summary rows: the reference does not promise complete list rows
        assets = [omit_paths(asset, behaviour.list_omit) for asset in assets]
    count = max(0, count + behaviour.count_offset)  # a count that is off (Behaviour)
    return JSONResponse({"count": count, "assets": assets})


def _mutate_on_list(state: EmulatorState, offset: int) -> None:
    """Delete or create the assets set to change when this page of the project is asked for
    (``Behaviour.list_mutations``), before it is read; each fires once."""
    pending = state.config.behaviour.list_mutations
    for mutation in [m for m in pending if m.offset == offset]:
        pending.remove(mutation)
        if mutation.delete is not None:
            state.store.delete(mutation.delete)
            log.info("asset %s deleted while page %d was asked for", mutation.delete, offset)
        if mutation.create is not None:
            state.store.seed([dict(mutation.create)], state.config.project_id, "list mutation")
            created = mutation.create["asset_id"]
            log.info("asset %s created while page %d was asked for", created, offset)


async def show_asset(request: Request) -> Response:
    asset = _state(request).store.get(request.path_params["asset_id"])
    if asset is None:
        raise errors.asset_not_found()
    return JSONResponse(asset)


def _parse_update_body(raw: bytes, stored: Asset | None = None) -> dict[str, Any]:
    """The checked body; ``stored`` (the asset now) lets fields it returns inside a block be
    sent back (see :func:`reconciler.emulator.body.check_body`)."""
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, errors.REQUEST_JSON, "Request JSON exception") from None
    if not isinstance(parsed, dict):
        raise ApiError(
            400, errors.REQUEST_JSON, "Request JSON exception: the body must be an object"
        )
    try:
        return check_body(parsed, stored)
    except BodyProblems as exc:
        raise errors.validation("; ".join(exc.problems)) from None


def stored_after(asset: Asset, body: dict[str, Any], write_only: Asset | None = None) -> Asset:
    """The asset the emulator stores after a PUT of ``body`` (as sent over the wire) to ``asset``.

    The same checks and update rules as the route, without HTTP: for property tests.
    """
    checked = _parse_update_body(json.dumps(body).encode(), asset)
    return apply_update(asset, write_only or {}, checked).asset


def _answer(kind: str, before: Asset, after: Asset) -> Asset:
    """The PUT answer the configured behaviour gives (see Behaviour.put_answer)."""
    if kind == "short":
        return {k: after[k] for k in SHORT_ANSWER_FIELDS if k in after}
    if kind == "stale":
        return before
    return after


def _edits_after_put(state: EmulatorState, asset_id: str) -> list[str]:
    """Fire the out-of-band edits this PUT triggers; the ids edited."""
    edited: list[str] = []
    for index, edit in enumerate(state.config.behaviour.edits_on_put):
        if index in state.fired_edits:
            continue
        if (edit.after is None and edit.asset_id != asset_id) or edit.after == asset_id:
            state.fired_edits.add(index)
            try:
                state.store.patch(edit.asset_id, dict(edit.changes))
            except KeyError:
                continue
            log.info("out-of-band edit of %s after the PUT of %s", edit.asset_id, asset_id)
            edited.append(edit.asset_id)
    return edited


async def update_asset(request: Request) -> Response:
    asset_id = request.path_params["asset_id"]
    state = _state(request)
    body = _parse_update_body(await request.body(), state.store.get(asset_id))
    outcome: list[UpdateOutcome] = []
    before: list[Asset] = []

    def change(asset: Asset, hidden: Asset) -> tuple[Asset, Asset] | None:
        before.append(asset)
        result = apply_update(asset, hidden, body)
        outcome.append(result)
        return (result.asset, result.write_only) if result.changed else None

    stored = state.store.update(asset_id, change)
    if stored is None:
        raise errors.asset_not_found()
    if outcome and outcome[0].ignored:
        request.scope["emulator.ignored"] = outcome[0].ignored
        log.info("update %s ignored: %s", asset_id, ", ".join(outcome[0].ignored))
    edited = _edits_after_put(state, asset_id)
    if edited:
        request.scope["emulator.edited"] = edited
    return JSONResponse(_answer(state.config.behaviour.put_answer, before[0], stored[0]))


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc, request.scope.get("emulator.request_id", ""))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    request_id = request.scope.get("emulator.request_id", "")
    if exc.status_code == 405:
        return error_response(
            ApiError(400, errors.METHOD_NOT_ALLOWED, "SR.method not allowed"), request_id
        )
    return error_response(ApiError(400, errors.API_NOT_FOUND, "SR.api not found"), request_id)


class EmulatorApp(Starlette):
    """Keeps the server's own ``send`` so that a dropped request can abort the socket."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["emulator.raw_send"] = send
        await super().__call__(scope, receive, send)


def create_app(config: EmulatorConfig, store: AssetStore | None = None) -> Starlette:
    """The emulator as an ASGI app; ``store`` defaults to a fresh in-memory database."""
    state = EmulatorState(
        config=config,
        store=store if store is not None else AssetStore(),
        limiter=RateLimiter(config.rate_limits),
        recorder=RequestRecorder(config.record_path) if config.record_path else None,
        rng=random.Random(config.random_seed),
    )
    routes = [
        Route("/v1/{project_id}/digital-assets", list_assets, methods=["GET"]),
        Route("/v1/{project_id}/digital-assets/{asset_id}", show_asset, methods=["GET"]),
        Route("/v1/{project_id}/digital-assets/{asset_id}", update_asset, methods=["PUT"]),
    ]
    app = EmulatorApp(
        routes=routes,
        middleware=[Middleware(Gateway, state=state)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.emulator = state
    return app
