"""Who is calling: AK/SK signature (SDK-HMAC-SHA256) or IAM token, checked like the API gateway.

The canonical request is rebuilt from what arrived on the wire (raw path, query pairs, the
headers named in SignedHeaders, the body), so a client that signs anything differently from the
official SDK is refused here exactly as it would be by the real gateway.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import unquote

from reconciler.api import signing
from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.errors import TENANT_MISMATCH, ApiError, unauthorized


def query_pairs(raw_query: bytes) -> list[tuple[str, str]]:
    """Decoded (key, value) pairs in wire order; ``+`` stays ``+`` as the signer encodes it."""
    pairs: list[tuple[str, str]] = []
    for item in raw_query.decode("latin-1").split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def _same(expected: str | None, given: str) -> bool:
    return expected is not None and hmac.compare_digest(expected.encode(), given.encode())


def authenticate(
    config: EmulatorConfig,
    method: str,
    raw_path: str,
    raw_query: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime | None = None,
) -> None:
    """Return when the request is authentic for the configured tenant, else raise ApiError 401.

    ``headers`` must be case-insensitive (Starlette's ``Headers``).  Messages never contain
    the credentials themselves.
    """
    token = headers.get("x-auth-token")
    authorization = headers.get("authorization")
    if token is not None:
        if not _same(config.token, token):
            raise unauthorized("the token is invalid or expired")
    elif authorization is not None:
        _verify_signature(config, method, raw_path, raw_query, headers, body, authorization, now)
    else:
        raise unauthorized("no Authorization or X-Auth-Token header")
    header_project = headers.get("x-project-id")
    if header_project is not None and header_project != config.project_id:
        raise unauthorized("the credentials do not grant access to the project in X-Project-Id")


def _verify_signature(
    config: EmulatorConfig,
    method: str,
    raw_path: str,
    raw_query: bytes,
    headers: Mapping[str, str],
    body: bytes,
    authorization: str,
    now: datetime | None,
) -> None:
    try:
        access, signed, claimed = signing.parse_authorization(authorization)
    except ValueError:
        raise unauthorized("the Authorization header is not SDK-HMAC-SHA256") from None
    if not _same(config.ak, access) or config.sk is None:
        raise unauthorized("the access key is unknown")
    date = headers.get(signing.DATE_HEADER.lower())
    if date is None:
        raise unauthorized("X-Sdk-Date header is missing")
    try:
        sent_at = signing.parse_sdk_date(date)
    except ValueError:
        raise unauthorized("X-Sdk-Date is not in the format YYYYMMDDTHHMMSSZ") from None
    skew = abs(((now or datetime.now(UTC)) - sent_at).total_seconds())
    if skew > config.clock_skew_seconds:
        raise unauthorized(
            f"X-Sdk-Date is more than {config.clock_skew_seconds // 60} minutes from server time"
        )
    if "x-sdk-date" not in signed:
        raise unauthorized("X-Sdk-Date is not among the signed headers")
    missing = [name for name in signed if headers.get(name) is None]
    if missing:
        raise unauthorized(f"signed header {missing[0]} is missing from the request")
    signed_values = {name: headers[name] for name in signed}
    content_sha = headers.get(signing.CONTENT_SHA256_HEADER.lower())
    if content_sha is not None:
        signed_values[signing.CONTENT_SHA256_HEADER] = content_sha
    pairs = query_pairs(raw_query)
    if not signing.verify(config.sk, method, raw_path, pairs, signed_values, signed, body, claimed):
        raise unauthorized("verify aksk signature fail")
    security_token = headers.get("x-security-token")
    if config.security_token is not None and not _same(config.security_token, security_token or ""):
        raise unauthorized("the security token is missing or invalid")
    if config.security_token is None and security_token is not None:
        raise unauthorized("the security token is invalid")


def check_project(config: EmulatorConfig, path_project: str) -> None:
    """The project in the URL must be the caller's project."""
    if path_project != config.project_id:
        raise ApiError(400, TENANT_MISMATCH, "urlTenantId is not equal tokenTenantId")
