"""SDK-HMAC-SHA256: the AK/SK request signature of Huawei Cloud, as the official SDK computes it.

Pure functions over the parts of a request, so that the client (an ``httpx.Auth`` flow) and the
emulator (which verifies) share one implementation.  The canonical form, step by step, is in
``docs/configuration.md``; the quirks that matter for byte-exact equality with the SDK:

* the canonical URI always ends in ``/`` although the wire path does not;
* query pairs are sorted by their *raw* (key, value) and each side is encoded with
  ``quote(x, safe="~")``;
* every header whose name has no ``_`` is signed, including ``User-Agent``;
* the SK is the HMAC key as is, with no derivation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
CONTENT_SHA256_HEADER = "X-Sdk-Content-Sha256"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_AUTHORIZATION_PARTS = ("Access", "SignedHeaders", "Signature")


def sdk_date(now: datetime | None = None) -> str:
    """The ``X-Sdk-Date`` value for ``now`` (UTC)."""
    return (now or datetime.now(UTC)).strftime(DATE_FORMAT)


def parse_sdk_date(value: str) -> datetime:
    """Parse an ``X-Sdk-Date`` value; raises ``ValueError`` when malformed."""
    return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)


def _encode(value: str) -> str:
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """Each segment of the decoded path re-encoded, with a trailing slash."""
    uri = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sorted by raw (key, value), then encoded; also the query string sent on the wire."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Lower-cased, sorted names of the headers that take part in the signature."""
    return sorted({name.lower() for name in headers if "_" not in name})


def payload_hash(headers: Mapping[str, str], body: bytes) -> str:
    """As the SDK: an empty body hashes to EMPTY_SHA256 even when X-Sdk-Content-Sha256 is set."""
    if not body:
        return EMPTY_SHA256
    lowered = {k.lower(): v for k, v in headers.items()}
    preset = lowered.get(CONTENT_SHA256_HEADER.lower())
    if preset:
        return preset
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    lowered = {k.lower(): str(v).strip() for k, v in headers.items()}
    header_block = "".join(f"{name}:{lowered.get(name, '')}\n" for name in signed_headers)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            header_block,
            ";".join(signed_headers),
            payload_hash(headers, body),
        ]
    )


def string_to_sign(canonical: str, date: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{date}\n{digest}"


def signature(secret_key: str, to_sign: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    access_key: str,
    secret_key: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The ``Authorization`` header value for a request whose headers already hold X-Sdk-Date."""
    if _date(headers) is None:
        raise ValueError(f"{DATE_HEADER} header is required to sign a request")
    names = signed_header_names(headers)
    sig = _sign(secret_key, method, path, query, headers, names, body)
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(names)}, Signature={sig}"


def _date(headers: Mapping[str, str]) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == DATE_HEADER.lower()), None)


def _sign(
    secret_key: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    canonical = canonical_request(method, path, query, headers, signed_headers, body)
    return signature(secret_key, string_to_sign(canonical, _date(headers) or ""))


def parse_authorization(value: str) -> tuple[str, list[str], str]:
    """Split an Authorization header into (access key, signed header names, signature).

    Raises ``ValueError`` for anything that is not an SDK-HMAC-SHA256 header.
    """
    prefix = ALGORITHM + " "
    if not value.startswith(prefix):
        raise ValueError("not an SDK-HMAC-SHA256 authorization")
    parts: dict[str, str] = {}
    for item in value[len(prefix) :].split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            raise ValueError("malformed authorization")
        parts[key] = val
    # Checked by name rather than by catching a lookup error, so every incomplete header (a part
    # missing or empty) is the same ValueError, which the verifier answers with a 401.
    lacking = [name for name in _AUTHORIZATION_PARTS if not parts.get(name)]
    if lacking:
        raise ValueError(f"authorization lacks {', '.join(lacking)}")
    return parts["Access"], parts["SignedHeaders"].split(";"), parts["Signature"]


def verify(
    secret_key: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
    claimed: str,
) -> bool:
    """Whether ``claimed`` is the signature of the request under ``secret_key``."""
    expected = _sign(secret_key, method, path, query, headers, signed_headers, body)
    return hmac.compare_digest(expected, claimed)
