"""The emulator's gateway checks: a signed request passes, each kind of tampering is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import Headers

from reconciler.api import signing
from reconciler.emulator.auth import authenticate, check_project, query_pairs
from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.errors import ApiError

CONFIG = EmulatorConfig(project_id="p1", ak="the-ak", sk="the-sk", token="the-token")
NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
PATH = "/v1/p1/digital-assets/"
QUERY = b"limit=10&asset_id=a%2Bb"
BODY = b'{"asset_name": "x"}'


def signed_headers(sk: str = "the-sk", at: datetime = NOW, **extra: str) -> dict[str, str]:
    headers = {"host": "127.0.0.1:1", "x-sdk-date": signing.sdk_date(at), **extra}
    headers["authorization"] = signing.authorization(
        "the-ak", sk, "PUT", PATH, query_pairs(QUERY), headers, BODY
    )
    return headers


def check(headers: dict[str, str], body: bytes = BODY, config: EmulatorConfig = CONFIG) -> None:
    authenticate(config, "PUT", PATH, QUERY, Headers(headers), body, now=NOW)


def refused(headers: dict[str, str], body: bytes = BODY, config: EmulatorConfig = CONFIG) -> str:
    with pytest.raises(ApiError) as info:
        check(headers, body, config)
    assert info.value.status == 401
    return str(info.value)


def test_a_correctly_signed_request_passes() -> None:
    check(signed_headers())


def test_plus_in_the_query_is_decoded_as_the_signer_encoded_it() -> None:
    assert query_pairs(b"a=1&b=x%2By&c=x+y&&") == [("a", "1"), ("b", "x+y"), ("c", "x+y")]


def test_a_changed_body_breaks_the_signature() -> None:
    assert "verify aksk signature fail" in refused(signed_headers(), body=b'{"asset_name": "y"}')


def test_the_wrong_secret_key_is_refused_without_echoing_it() -> None:
    message = refused(signed_headers(sk="not-the-sk"))
    assert "signature" in message and "not-the-sk" not in message and "the-sk" not in message


def test_an_old_date_is_refused() -> None:
    assert "minutes from server time" in refused(signed_headers(at=NOW - timedelta(minutes=20)))


def test_no_credentials_at_all_is_refused() -> None:
    assert "no Authorization" in refused({"host": "x"})


def test_a_token_is_checked_by_value() -> None:
    check({"x-auth-token": "the-token"})
    assert "token" in refused({"x-auth-token": "other"})


def test_a_required_security_token_must_come_with_the_signature() -> None:
    config = EmulatorConfig(project_id="p1", ak="the-ak", sk="the-sk", security_token="st")
    assert "security token" in refused(signed_headers(), config=config)
    check(signed_headers(**{"x-security-token": "st"}), config=config)


def test_another_project_in_the_header_or_url_is_refused() -> None:
    assert "X-Project-Id" in refused({"x-auth-token": "the-token", "x-project-id": "p2"})
    with pytest.raises(ApiError) as info:
        check_project(CONFIG, "p2")
    assert info.value.status == 400
