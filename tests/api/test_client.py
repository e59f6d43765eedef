"""Error parsing, Retry-After, pacing and retry bounds, without a server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from reconciler.api.auth import Credentials
from reconciler.api.client import MetaStudioClient, PutFailure, RetryPolicy, retry_after_seconds
from reconciler.api.config import RateLimits, Target
from reconciler.api.errors import (
    ApiError,
    AssetNotFound,
    CredentialsRejected,
    ServiceError,
    ServiceUnreachable,
    Throttled,
    error_for_status,
    parse_error_body,
)
from reconciler.api.pacing import Pacer, RateLimiter, default_burst


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"error_code": "MSS.1", "error_msg": "bad"}', ("MSS.1", "bad")),
        ('{"errorCode": "E2", "errorMsg": "camel"}', ("E2", "camel")),
        ('{"code": "E3", "message": "plain"}', ("E3", "plain")),
        ('{"error": {"code": "E4", "message": "nested"}}', ("E4", "nested")),
        ("<html>bad gateway</html>", (None, "<html>bad gateway</html>")),
        ("[1, 2]", (None, "[1, 2]")),
        ("", (None, None)),
    ],
)
def test_error_bodies_parse_like_the_sdk(
    body: str, expected: tuple[str | None, str | None]
) -> None:
    assert parse_error_body(body) == expected


def make(status: int, body: dict[str, str] | str) -> ApiError:
    text = body if isinstance(body, str) else json.dumps(body)
    return error_for_status(
        method="PUT", path="/v1/p/digital-assets/abc", status=status, body=text, request_id="1234"
    )


def test_error_classes_and_one_line_message() -> None:
    error = make(400, {"error_code": "MSS.10000003", "error_msg": "Parameter validation abnormal"})
    assert type(error) is ApiError
    assert str(error) == (
        "PUT /v1/p/digital-assets/abc failed: 400 MSS.10000003 "
        "Parameter validation abnormal (request id 1234)"
    )
    assert isinstance(make(400, {"error_code": "MSS.10001001", "error_msg": "x"}), AssetNotFound)
    assert isinstance(
        make(401, {"error_code": "APIGW.0301", "error_msg": "x"}), CredentialsRejected
    )
    assert isinstance(make(403, "forbidden"), CredentialsRejected)
    assert isinstance(make(429, {"error_code": "APIG.0308", "error_msg": "x"}), Throttled)
    server = make(502, "bad\ngateway")
    assert isinstance(server, ServiceError)
    assert str(server) == "PUT /v1/p/digital-assets/abc failed: 502 bad gateway (request id 1234)"
    assert server.error_code == "502"  # the SDK's fallback: the status as the code


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-1", 0.0), (None, None), ("soon", None)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.grants: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_rate_limiter_spaces_concurrent_requests_evenly() -> None:
    fake = FakeTime()
    limiter = RateLimiter(4, clock=fake.clock, sleep=fake.sleep)

    async def one() -> None:
        await limiter.acquire()
        fake.grants.append(fake.now)

    await asyncio.gather(*(one() for _ in range(9)))
    gaps = [b - a for a, b in zip(fake.grants, fake.grants[1:], strict=False)]
    assert fake.grants[0] == 100.0  # the first goes at once
    assert all(gap == pytest.approx(0.25) for gap in gaps)
    # no one-second window holds more than the rate
    assert max(sum(1 for g in fake.grants if t <= g < t + 1) for t in fake.grants) == 4


def test_a_rate_limiter_keeps_its_tokens_from_one_event_loop_to_the_next() -> None:
    """A plan and then its apply run in two event loops with one pacer per target: the second
    loop may neither fail on the first loop's lock nor start with a full burst again."""
    fake = FakeTime()
    limiter = RateLimiter(4, burst=3, clock=fake.clock, sleep=fake.sleep)

    async def burst(count: int) -> None:
        async def one() -> None:
            await limiter.acquire()
            fake.grants.append(fake.now)

        await asyncio.gather(*(one() for _ in range(count)))

    asyncio.run(burst(5))  # 3 at once, then 2 paced: the waiters queue on the lock
    spent_at = fake.now
    asyncio.run(burst(2))
    assert fake.grants[5] == pytest.approx(spent_at + 0.25)  # no new burst in the new loop
    assert fake.grants[6] == pytest.approx(spent_at + 0.5)


async def test_rate_limiter_pause_holds_everyone_back() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)
    await limiter.acquire()
    limiter.pause(3.0)
    await limiter.acquire()
    assert fake.now >= 103.0


async def test_unlimited_rate_never_waits() -> None:
    fake = FakeTime()
    limiter = RateLimiter(0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(50):
        await limiter.acquire()
    assert fake.now == 100.0


TARGET = Target(
    name="t",
    region=None,
    project_id="p",
    endpoint="https://ms.example.test",
    rate_limits=RateLimits(0, 0, 0),
)
ASSET = {"asset_id": "abc", "asset_name": "Sara"}


def client_with(
    handler: Callable[[httpx.Request], httpx.Response], **kw: object
) -> MetaStudioClient:
    policy = RetryPolicy(
        max_retries=3, backoff_base=0.001, backoff_cap=0.002, throttle_delay=(0, 0)
    )
    client = MetaStudioClient(
        TARGET, Credentials(ak="ak", sk="sk"), transport=httpx.MockTransport(handler), retry=policy
    )
    return client


async def test_a_put_is_sent_once_and_its_failure_says_whether_it_may_have_landed() -> None:
    """Writes are never retried blindly by the client: a retry must follow a fresh read, which
    only apply makes.  A 5xx with the service's error body was refused; one without a body (a
    gateway that gave up) may have landed; a 429 was decided before the service."""
    answers = [
        httpx.Response(503, json={"error_code": "MSS.X", "error_msg": "busy"}),
        httpx.Response(504),
        httpx.Response(429, json={"error_code": "APIG.0308", "error_msg": "slow down"}),
    ]
    calls: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.content)
        return answers[len(calls) - 1]

    async with client_with(handler) as client:
        refused = await client.put_once("abc", {"asset_name": "Sara"})
        lost = await client.put_once("abc", {"asset_name": "Sara"})
        throttled = await client.put_once("abc", {"asset_name": "Sara"})
    assert calls == [b'{"asset_name": "Sara"}'] * 3  # the SDK's json.dumps form, once each
    assert isinstance(refused, PutFailure) and refused.error.status == 503
    assert (refused.retryable, refused.maybe_applied, refused.throttled) == (True, False, False)
    assert isinstance(lost, PutFailure) and (lost.maybe_applied, lost.kind) == (True, "HTTP 504")
    assert isinstance(throttled, PutFailure) and throttled.throttled
    assert not throttled.maybe_applied


async def test_update_makes_one_attempt_and_raises_its_error() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, json={"error_code": "MSS.X", "error_msg": "busy"})

    async with client_with(handler) as client:
        with pytest.raises(ServiceError, match=r"503 MSS\.X busy"):
            await client.update("abc", {"asset_name": "Sara"})
    assert calls == 1


async def test_a_connection_that_was_never_made_did_not_land() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with client_with(handler) as client:
        failure = await client.put_once("abc", {"asset_name": "Sara"})
    assert isinstance(failure, PutFailure)
    assert (failure.retryable, failure.maybe_applied) == (True, False)


async def test_a_connection_lost_after_sending_may_have_landed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    async with client_with(handler) as client:
        failure = await client.put_once("abc", {"asset_name": "Sara"})
    assert isinstance(failure, PutFailure)
    assert (failure.retryable, failure.maybe_applied, failure.kind) == (
        True,
        True,
        "connection reset",
    )


async def test_retries_are_bounded_and_the_last_error_is_reported() -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(
            429,
            json={"error_code": "APIG.0308", "error_msg": "over ratelimit"},
            headers={"X-Request-Id": f"r{count}", "Retry-After": "0"},
        )

    client = client_with(handler)
    client.retry = dataclasses.replace(client.retry, max_throttled=5)
    async with client:
        with pytest.raises(Throttled) as info:
            await client.show("abc")
    # 429s are waited out without using the failure budget (max_retries 3), up to max_throttled
    assert count == 6
    assert info.value.request_id == "r6"
    assert "429 APIG.0308 over ratelimit (request id r6)" in str(info.value)


async def test_failures_use_up_the_retry_budget() -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(503, json={"error_code": "MSS.X", "error_msg": "busy"})

    async with client_with(handler) as client:
        with pytest.raises(ServiceError):
            await client.show("abc")
    assert count == 4  # one try + max_retries


async def test_client_errors_are_not_retried() -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(400, json={"error_code": "MSS.10000003", "error_msg": "bad"})

    async with client_with(handler) as client:
        with pytest.raises(ApiError):
            await client.update("abc", {"asset_name": ""})
    assert count == 1


async def test_non_json_success_is_a_service_error() -> None:
    async with client_with(lambda r: httpx.Response(200, text="<html>")) as client:
        with pytest.raises(ServiceError, match="unexpected response: the response is not JSON"):
            await client.show("abc")


async def test_asset_ids_are_path_encoded_and_query_is_canonical() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("digital-assets"):
            return httpx.Response(200, json={"count": 0, "assets": []})
        return httpx.Response(200, json={"asset_id": "a/b c"})

    async with client_with(handler) as client:
        await client.list_page(0, 100, asset_ids=["b", "a"], asset_state=["ACTIVED", "UNACTIVED"])
        await client.show("a/b c")
    assert seen[0].url.raw_path.decode() == (
        "/v1/p/digital-assets?asset_id=a&asset_id=b&asset_state=ACTIVED%2CUNACTIVED"
        "&limit=100&offset=0"
    )
    assert seen[1].url.raw_path.decode() == "/v1/p/digital-assets/a%2Fb%20c"
    assert seen[0].headers["Content-Type"] == "application/json"
    assert seen[0].headers["Authorization"].startswith("SDK-HMAC-SHA256 Access=ak, ")


async def test_pacer_allows_the_services_burst_and_then_its_rate() -> None:
    """100 list requests at 20/s: the first burst at once, the rest 1/20 s apart (about 4 s)."""
    fake = FakeTime()
    pacer = Pacer(RateLimits(list=20, show=20, update=10))
    limiter = pacer.limiters["list"]
    limiter._clock, limiter._sleep = fake.clock, fake.sleep
    limiter._updated = fake.now

    async def one() -> None:
        await pacer.acquire("list")
        fake.grants.append(fake.now)

    await asyncio.gather(*(one() for _ in range(100)))
    assert fake.grants.count(100.0) == default_burst(20) == 19
    assert fake.grants[-1] - fake.grants[0] == pytest.approx(81 / 20)
    # what a server bucket of 20 tokens refilled at 20/s admits, it admits with a token to spare
    for i, start in enumerate(fake.grants):
        for j in range(i, len(fake.grants)):
            assert j - i + 1 <= 19 + 20 * (fake.grants[j] - start) + 1e-6


async def test_a_429_still_pauses_a_bursting_pacer() -> None:
    fake = FakeTime()
    limiter = RateLimiter(20, burst=default_burst(20), clock=fake.clock, sleep=fake.sleep)
    await limiter.acquire()
    limiter.pause(2.0)
    await limiter.acquire()
    assert fake.now >= 102.0


async def test_live_asset_is_typed_only_on_demand() -> None:
    """A field the lenient model cannot read does not fail the read; reading .info does."""
    odd = {**ASSET, "asset_order": "not a number"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"count": 1, "assets": [odd]}, headers={"X-Request-Id": "r"}
        )

    async with client_with(handler) as client:
        count, (live,) = await client.list_page(0, 100)
    assert count == 1 and live.asset_id == ASSET["asset_id"] and live.raw == odd
    with pytest.raises(ServiceError, match=r"unexpected response: asset_order: .*integer"):
        _ = live.info


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"asset_name": "no id"}, "asset_id: Field required"),
        ({"asset_id": 7}, "asset_id: Input should be a valid string"),
        ("text", "an asset is not an object"),
    ],
)
async def test_an_asset_without_a_string_id_fails_the_read(item: object, problem: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"count": 1, "assets": [item]})

    async with client_with(handler) as client:
        with pytest.raises(ServiceError, match=f"unexpected response: {problem}"):
            await client.list_page(0, 100)


async def test_updates_stay_evenly_spaced() -> None:
    fake = FakeTime()
    pacer = Pacer(RateLimits(list=20, show=20, update=10))
    limiter = pacer.limiters["update"]
    limiter._clock, limiter._sleep = fake.clock, fake.sleep
    limiter._updated = fake.now
    for _ in range(5):
        await pacer.acquire("update")
        fake.grants.append(fake.now)
    assert fake.grants == pytest.approx([100.0, 100.1, 100.2, 100.3, 100.4])


def page_handler(count: int, pages: dict[int, list[str]], seen: list[int]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        seen.append(offset)
        ids = pages.get(offset, [])
        return httpx.Response(200, json={"count": count, "assets": [{"asset_id": i} for i in ids]})

    return handler


async def test_paging_stops_at_the_first_empty_page_whatever_count_says() -> None:
    seen: list[int] = []
    pages = {0: [f"a{i}" for i in range(100)], 100: ["b1", "b2"]}
    async with client_with(page_handler(10**9, pages, seen)) as client:
        assets = await client.list_all()
    assert len(assets) == 102
    assert max(seen) < 100 * (1 + 2 * client.parallelism)  # one round after the empty page
    assert len(seen) <= 1 + 2 * client.parallelism


async def test_a_page_of_assets_already_seen_stops_paging() -> None:
    seen: list[int] = []
    full = [f"a{i}" for i in range(100)]
    async with client_with(
        page_handler(10**9, dict.fromkeys(range(0, 10**4, 100), full), seen)
    ) as client:
        with pytest.raises(ServiceError, match="repeats assets already read"):
            await client.list_all()
    assert len(seen) <= 1 + client.parallelism


async def test_a_page_larger_than_its_limit_is_a_service_error() -> None:
    pages = {0: [f"a{i}" for i in range(150)]}
    async with client_with(page_handler(150, pages, [])) as client:
        with pytest.raises(ServiceError, match="150 assets in a page of at most 100"):
            await client.list_page(0, 100)


async def test_an_asset_holding_nan_is_marked_and_the_rest_are_not() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = b'{"count": 2, "assets": [{"asset_id": "a", "x": {"y": NaN}}, {"asset_id": "b"}]}'
        return httpx.Response(200, content=body)

    async with client_with(handler) as client:
        _, (bad, good) = await client.list_page(0, 100)
    assert bad.problem == "x.y is not a finite number (NaN or Infinity)"
    error = bad.problem_error()
    assert error is not None and "asset a: x.y is not a finite number" in str(error)
    assert good.problem is None and good.problem_error() is None


def raising(exc: BaseException, calls: list[int]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("failed") from exc

    return handler


@pytest.mark.parametrize(
    ("cause", "message"),
    [
        (socket.gaierror(-2, "Name or service not known"), "cannot resolve host ms.example.test"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS certificate of"),
        (ssl.SSLError(1, "wrong version number"), "TLS handshake with ms.example.test failed"),
    ],
    ids=["dns", "tls-verify", "tls-handshake"],
)
async def test_dns_and_tls_failures_are_not_retried(cause: BaseException, message: str) -> None:
    calls: list[int] = []
    async with client_with(raising(cause, calls)) as client:
        with pytest.raises(ServiceUnreachable, match=message) as info:
            await client.show("abc")
    assert calls == [1]
    assert "not retried" in str(info.value)


async def test_a_reset_connection_is_retried() -> None:
    calls: list[int] = []
    async with client_with(raising(ConnectionResetError(104, "reset"), calls)) as client:
        with pytest.raises(ServiceUnreachable, match="after 4 attempt"):
            await client.show("abc")
    assert len(calls) == 4


async def test_an_attempt_has_a_total_deadline() -> None:
    """A body that arrives a byte at a time cannot stretch an attempt past the target's timeout."""

    class Drip(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for byte in b'{"asset_id": "abc"}':
                await asyncio.sleep(0.05)
                yield bytes([byte])

    target = dataclasses.replace(TARGET, timeout=0.2, max_retries=0)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Drip())

    client = MetaStudioClient(
        target, Credentials(ak="ak", sk="sk"), transport=httpx.MockTransport(handler)
    )
    started = asyncio.get_running_loop().time()
    async with client:
        with pytest.raises(ServiceUnreachable, match=r"no complete answer within 0.2s"):
            await client.show("abc")
    assert asyncio.get_running_loop().time() - started < 1.0


async def test_an_accepted_put_whose_answer_cannot_be_read_may_have_landed() -> None:
    """A 2xx is the service taking the write: an unreadable body does not make it a failure."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>ok</html>")

    async with client_with(handler) as client:
        outcome = await client.put_once("abc", {"asset_name": "Sara"})
    assert isinstance(outcome, PutFailure)
    assert (outcome.maybe_applied, outcome.retryable, outcome.kind) == (
        True,
        False,
        "unreadable answer",
    )
