"""Signing at its edges: what the official SDK signs, and what the emulator answers.

The real service accepts a request only when its signature is the one the official SDK computes,
so every edge case here is checked against the SDK's own signer (a mismatch would be a 401 from
the service).  The emulator verifies with this module too, so its answers show what a caller
sees for a malformed or stale Authorization: a clean 401, never a 500.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from reconciler.api import signing
from reconciler.emulator.testing import run_emulator

HOST = "metastudio.cn-north-4.myhuaweicloud.com"
DATE = "20240101T000000Z"
BASE_HEADERS = {"Content-Type": "application/json", "Host": HOST, "X-Sdk-Date": DATE}


def sdk_authorization(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
) -> str:
    """The Authorization header the official SDK computes for the same request."""
    request = SdkRequest(
        method=method,
        schema="https",
        host=HOST,
        resource_path=path,
        query_params=list(query),
        header_params=dict(headers),
        body=body or None,
    )
    Signer(BasicCredentials("AK", "SK", "p1")).sign(request)
    return str(request.header_params["Authorization"])


@pytest.mark.parametrize(
    ("path", "query", "extra_headers", "body"),
    [
        pytest.param("/v1/p1/digital-assets/", [], {}, b"", id="path-ending-in-slash"),
        pytest.param(
            "/v1/p1/digital-assets", [("name", "a/b~c")], {}, b"", id="query-value-with-slash"
        ),
        pytest.param(
            "/v1/p1/digital-assets",
            [],
            {"X_Trace_Id": "t-1", "X-App-UserId": "u"},
            b"",
            id="header-with-underscore-is-not-signed",
        ),
        pytest.param(
            "/v1/p1/digital-assets/a1",
            [],
            {"X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"},
            b'{"asset_name": "x"}',
            id="preset-content-hash",
        ),
        pytest.param(
            "/v1/p1/digital-assets/a1",
            [],
            {"x-sdk-content-sha256": "UNSIGNED-PAYLOAD"},
            b'{"asset_name": "x"}',
            id="preset-content-hash-lower-case-name",
        ),
        pytest.param(
            "/v1/p1/digital-assets/a1",
            [],
            {"X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"},
            b"",
            id="preset-content-hash-empty-body",
        ),
    ],
)
def test_signature_is_the_official_sdks(
    path: str, query: list[tuple[str, str]], extra_headers: dict[str, str], body: bytes
) -> None:
    headers = {**BASE_HEADERS, **extra_headers}
    ours = signing.authorization("AK", "SK", "PUT", path, query, headers, body)
    assert ours == sdk_authorization("PUT", path, query, headers, body)


def test_underscore_headers_are_left_out_of_signed_headers() -> None:
    headers = {**BASE_HEADERS, "X_Trace_Id": "t-1"}
    auth = signing.authorization("AK", "SK", "GET", "/v1/p1/digital-assets", [], headers, b"")
    assert "SignedHeaders=content-type;host;x-sdk-date," in auth


def test_signing_without_a_date_header_is_refused_by_name() -> None:
    headers = {"Content-Type": "application/json", "Host": HOST}
    with pytest.raises(ValueError, match="X-Sdk-Date header is required"):
        signing.authorization("AK", "SK", "GET", "/v1/p1/digital-assets", [], headers, b"")


def test_date_header_is_the_utc_time_in_the_sdk_format() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert signing.sdk_date(moment) == "20260304T050607Z"
    assert signing.parse_sdk_date("20260304T050607Z") == moment


@pytest.fixture
def utc_plus_8(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is UTC+8 (most of the tool's users) for one test."""
    monkeypatch.setenv("TZ", "CST-8")  # POSIX form: needs no tz database
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("utc_plus_8")
def test_a_request_signed_now_on_a_utc_plus_8_machine_is_accepted() -> None:
    assert time.timezone == -8 * 3600
    now = datetime.now(UTC)
    stamp = signing.parse_sdk_date(signing.sdk_date())
    assert abs((stamp - now).total_seconds()) < 60
    with run_emulator([]) as emu:
        answer = emu.request("GET", emu.assets_path())
    assert answer.status_code == 200, answer.text


def test_a_request_signed_twenty_minutes_ago_is_refused_and_a_fresh_one_accepted() -> None:
    with run_emulator([]) as emu:
        stale = emu.request(
            "GET", emu.assets_path(), date=datetime.now(UTC) - timedelta(minutes=20)
        )
        fresh = emu.request("GET", emu.assets_path(), date=datetime.now(UTC))
    assert stale.status_code == 401
    assert "minutes from server time" in stale.json()["error_msg"]
    assert fresh.status_code == 200, fresh.text


@pytest.mark.parametrize(
    "authorization",
    [
        "SDK-HMAC-SHA256 SignedHeaders=host;x-sdk-date, Signature=abc",
        "SDK-HMAC-SHA256 Access=test-ak, Signature=abc",
        "SDK-HMAC-SHA256 Access=test-ak, SignedHeaders=host;x-sdk-date",
        "SDK-HMAC-SHA256 Access=, SignedHeaders=host;x-sdk-date, Signature=abc",
        "SDK-HMAC-SHA256 Access=test-ak, SignedHeaders=, Signature=abc",
        "SDK-HMAC-SHA256 Access=test-ak, SignedHeaders=host, Signature=",
        "SDK-HMAC-SHA256 Access=test-ak SignedHeaders=host Signature=abc",
        "SDK-HMAC-SHA256 Access",
        "HMAC-SHA256 Access=test-ak, SignedHeaders=host, Signature=abc",
    ],
)
def test_an_incomplete_authorization_header_is_a_clean_401(authorization: str) -> None:
    with run_emulator([]) as emu:
        answer = emu.request(
            "GET",
            emu.assets_path(),
            headers={"Authorization": authorization, "X-Sdk-Date": signing.sdk_date()},
            sign=False,
        )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error_code"] == "APIGW.0301"


def test_incomplete_authorization_names_every_missing_part() -> None:
    with pytest.raises(ValueError, match="lacks Access, Signature"):
        signing.parse_authorization("SDK-HMAC-SHA256 SignedHeaders=host")


def test_an_access_key_containing_equals_signs_is_read_whole() -> None:
    with run_emulator([], ak="key==") as emu:
        answer = emu.request("GET", emu.assets_path())
    assert answer.status_code == 200, answer.text
