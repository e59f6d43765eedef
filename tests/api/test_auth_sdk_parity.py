"""AkSkAuth signs each request exactly as the official SDK signs it at the same time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.api import signing
from reconciler.api.auth import UNSIGNED_HEADERS, AkSkAuth, Credentials, split_target

pytestmark = pytest.mark.sdk

NOW = datetime(2024, 1, 1, tzinfo=UTC)
HOST = "metastudio.cn-north-4.myhuaweicloud.com"


def sign_both(
    request: httpx.Request, creds: Credentials, project_id: str = "p1"
) -> tuple[str, SdkRequest]:
    """Sign with AkSkAuth, then give the SDK the same request (before auth) and the same time."""
    AkSkAuth(creds, project_id, clock=lambda: NOW).sign(request)
    ours = request.headers["Authorization"]
    added_by_sdk = {"authorization", "x-project-id", "x-security-token"}
    headers = {
        name: value
        for name, value in request.headers.items()
        if name.lower() not in added_by_sdk | UNSIGNED_HEADERS
    }
    path, query = split_target(request.url)
    sdk_request = SdkRequest(
        method=request.method,
        schema=request.url.scheme,
        host=request.url.netloc.decode(),
        resource_path=path,
        query_params=query,
        header_params=headers,
        body=request.content or None,
    )
    sdk_creds = BasicCredentials(creds.ak, creds.sk, project_id)
    if creds.security_token:
        sdk_creds = sdk_creds.with_security_token(creds.security_token)
    sdk_creds.sign_request(sdk_request)
    theirs = sdk_request.header_params["Authorization"]
    assert ours == theirs
    return ours, sdk_request


def build(
    method: str, url: str, *, headers: dict[str, str], body: bytes | None = None
) -> httpx.Request:
    """A request with the headers the client's httpx.AsyncClient would add."""
    with httpx.Client(headers={"User-Agent": "ua"}) as client:
        return client.build_request(method, url, headers=headers, content=body)


def test_facts_vector_get() -> None:
    query = [("limit", "10"), ("offset", "0"), ("asset_id", "b"), ("asset_id", "a")]
    query += [("name", "a b"), ("is_movable", "true")]
    url = f"https://{HOST}/v1/p1/digital-assets?{signing.canonical_query(query)}"
    request = httpx.Request(
        "GET",
        url,
        headers={"Content-Type": "application/json", "User-Agent": "ua", "X-App-UserId": "u"},
    )
    auth, sdk_request = sign_both(request, Credentials(ak="AK", sk="SK"))
    assert auth.endswith(
        "Signature=9ccd5206ec76aabd8716877dfa230bc360a7e07e2aa54176f938ebbe49a3c07d"
    )
    # the URI on the wire is the SDK's too
    assert request.url.raw_path.decode() == sdk_request.uri


def test_facts_vector_put() -> None:
    request = httpx.Request(
        "PUT",
        f"https://{HOST}/v1/p1/digital-assets/abc",
        headers={"Content-Type": "application/json", "User-Agent": "ua", "X-App-UserId": "u"},
        content=json.dumps({"asset_name": "x"}).encode(),
    )
    request.headers.pop("Content-Length")  # the facts vector was taken before it was added
    auth, _ = sign_both(request, Credentials(ak="AK", sk="SK"))
    assert auth.endswith(
        "Signature=1de759b4aa0561f174f21e1eb2bb9aaa5924a8993ec1c5c71758e7dd355bafeb"
    )


def test_security_token_is_sent_and_signed() -> None:
    request = build(
        "GET", f"https://{HOST}/v1/p1/digital-assets", headers={"Content-Type": "application/json"}
    )
    auth, _ = sign_both(request, Credentials(ak="AK", sk="SK", security_token="tmp-token"))
    assert request.headers["X-Security-Token"] == "tmp-token"
    assert "x-security-token" in auth


def test_transport_headers_are_not_signed_but_host_and_user_agent_are() -> None:
    request = build("PUT", f"https://{HOST}/v1/p1/digital-assets/a", headers={}, body=b"{}")
    auth, _ = sign_both(request, Credentials(ak="AK", sk="SK"))
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "user-agent", "x-sdk-date", "x-project-id"} <= set(signed)
    assert not set(signed) & UNSIGNED_HEADERS


def test_port_in_host_is_signed() -> None:
    request = build("GET", "http://127.0.0.1:8123/v1/p1/digital-assets", headers={})
    sign_both(request, Credentials(ak="AK", sk="SK"))
    assert request.headers["Host"] == "127.0.0.1:8123"


segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12
).filter(lambda s: s not in (".", ".."))
query_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10)
header_value = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "PUT"]),
    segments=st.lists(segment, min_size=1, max_size=3),
    query=st.lists(
        st.tuples(
            st.sampled_from(["asset_id", "name", "tag", "ünï", "a b"]) | query_text, query_text
        ),
        max_size=6,
    ),
    body=st.none() | st.dictionaries(query_text, query_text | st.integers(), max_size=4),
    app_user=st.none() | header_value,
    ak=header_value,
    sk=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20),
    project=header_value,
)
def test_random_requests_match_sdk(
    method: str,
    segments: list[str],
    query: list[tuple[str, str]],
    body: dict[str, object] | None,
    app_user: str | None,
    ak: str,
    sk: str,
    project: str,
) -> None:
    path = "/v1/" + "/".join(quote(s, safe="") for s in segments)
    url = f"https://{HOST}{path}" + (f"?{signing.canonical_query(query)}" if query else "")
    headers = {"Content-Type": "application/json"}
    if app_user:
        headers["X-App-UserId"] = app_user
    content = json.dumps(body).encode() if body is not None and method == "PUT" else None
    request = build(method, url, headers=headers, body=content)
    _, sdk_request = sign_both(request, Credentials(ak=ak, sk=sk), project)
    assert request.url.raw_path.decode() == sdk_request.uri
