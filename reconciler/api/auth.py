"""Credentials from the environment and the ``httpx.Auth`` flows that put them on requests.

Credentials come from the environment only (never from files in the repository), under the names
the official SDK uses, with the Huawei Cloud Terraform provider's names as fallbacks, or an IAM
token.  Every secret value is registered with the log redactor as soon as it is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx

from reconciler.api import signing
from reconciler.api.config import check_printable
from reconciler.errors import ConfigError
from reconciler.logs import register_secret

SDK_ENV = ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN")
TERRAFORM_ENV = ("HW_ACCESS_KEY", "HW_SECRET_KEY", "HW_SECURITY_TOKEN")
TOKEN_ENV = "HW_AUTH_TOKEN"
PROJECT_ENV = ("HUAWEICLOUD_SDK_PROJECT_ID", "HW_PROJECT_ID")

# Headers the HTTP stack may add, drop or rewrite on the way (hop-by-hop and transfer-level).
# The SDK's HTTP library adds them after signing, so they are not signed here either.
UNSIGNED_HEADERS = frozenset(
    {"connection", "keep-alive", "accept-encoding", "content-length", "transfer-encoding"}
)


@dataclass(frozen=True)
class Credentials:
    """AK/SK (optionally temporary, with a security token) or an IAM token."""

    ak: str | None = None
    sk: str | None = None
    security_token: str | None = None
    token: str | None = None
    project_id: str | None = None

    @property
    def kind(self) -> str:
        """``"aksk"`` or ``"token"``: which auth flow these credentials use."""
        return "aksk" if self.ak and self.sk else "token"

    def __repr__(self) -> str:
        def shown(value: str | None) -> str:
            return "None" if value is None else "'***'"

        return (
            f"Credentials(ak={shown(self.ak)}, sk={shown(self.sk)}, "
            f"security_token={shown(self.security_token)}, token={shown(self.token)}, "
            f"project_id={self.project_id!r})"
        )

    __str__ = __repr__

    def auth(self, project_id: str, clock: Callable[[], datetime] | None = None) -> httpx.Auth:
        """The auth flow for these credentials, scoped to ``project_id``."""
        if self.kind == "aksk":
            return AkSkAuth(self, project_id, clock=clock)
        return TokenAuth(self, project_id)


def _get(env: Mapping[str, str], name: str, what: str = "value", secret: bool = True) -> str | None:
    """A variable's value, checked before any request: a control or non-ASCII character would
    break the signature or the header (or forge output), so it is an error that names the
    variable and never shows the value.  A blank variable counts as unset; a value with a space,
    tab or line break before or after it (pasted with a trailing newline, quoted with a space)
    is refused rather than trimmed, since the key that signs must be exactly the key issued."""
    value = env.get(name, "")
    if not value.strip():
        return None
    if secret:  # before the check: nothing may echo it, not even by accident
        register_secret(value)
        register_secret(value.strip())
    if value != value.strip():
        where = "before" if value[0].isspace() else "after"
        raise ConfigError(
            f"{name}: the {what} has whitespace (a space, tab or line break) {where} it; "
            f"set {name} to the {what} alone"
        )
    return check_printable(value, name, what)


def credentials_from_env(env: Mapping[str, str] | None = None, prefix: str = "") -> Credentials:
    """Read credentials: SDK names first, then Terraform-provider names, then an IAM token.

    Within a family the AK and SK must both be set; a half-set pair is an error naming the
    missing variable rather than a silent fall-through to another family.  ``prefix`` (a
    target's ``credentials_env_prefix``, e.g. ``PROD_``) is put before every name, so each
    tenant has its own family (``PROD_HUAWEICLOUD_SDK_AK``...); a prefixed family never falls
    back to the plain names, so a run can not talk to one tenant with another's keys.
    """
    env = os.environ if env is None else env
    project_id = next(
        (v for name in PROJECT_ENV if (v := _get(env, prefix + name, "project id", secret=False))),
        None,
    )
    for names in (SDK_ENV, TERRAFORM_ENV):
        ak_name, sk_name, st_name = (prefix + name for name in names)
        ak, sk = _get(env, ak_name, "access key"), _get(env, sk_name, "secret key")
        if ak and not sk:
            raise ConfigError(f"incomplete credentials: {ak_name} is set, set {sk_name} too")
        if sk and not ak:
            raise ConfigError(f"incomplete credentials: {sk_name} is set, set {ak_name} too")
        if ak and sk:
            security_token = _get(env, st_name, "security token")
            for secret in (ak, sk, security_token):
                register_secret(secret)
            return Credentials(ak=ak, sk=sk, security_token=security_token, project_id=project_id)
    token = _get(env, prefix + TOKEN_ENV, "token")
    if token:
        register_secret(token)
        return Credentials(token=token, project_id=project_id)
    raise ConfigError(
        f"no credentials: set {prefix}HUAWEICLOUD_SDK_AK and {prefix}HUAWEICLOUD_SDK_SK "
        f"(or {prefix}HW_AUTH_TOKEN)"
    )


def split_target(url: httpx.URL) -> tuple[str, list[tuple[str, str]]]:
    """The raw (still percent-encoded) path and the decoded query pairs of a request URL."""
    raw = url.raw_path.decode("ascii")
    path, _, query = raw.partition("?")
    return path, parse_qsl(query, keep_blank_values=True)


class AkSkAuth(httpx.Auth):
    """SDK-HMAC-SHA256 over the exact method, path, query, headers and body httpx sends."""

    requires_request_body = True

    def __init__(
        self,
        credentials: Credentials,
        project_id: str,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not (credentials.ak and credentials.sk):
            raise ConfigError("AK/SK signing needs both an AK and an SK")
        self._ak = credentials.ak
        self._sk = credentials.sk
        self._security_token = credentials.security_token
        self._project_id = project_id
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return f"AkSkAuth(ak='***', project_id={self._project_id!r})"

    def sign(self, request: httpx.Request) -> None:
        """Add the auth headers to ``request`` in place (the same order the SDK uses)."""
        request.headers["X-Project-Id"] = self._project_id
        if self._security_token:
            request.headers["X-Security-Token"] = self._security_token
        request.headers[signing.DATE_HEADER] = signing.sdk_date(self._clock())
        if "host" not in request.headers:
            request.headers["Host"] = request.url.netloc.decode("ascii")
        request.headers.pop("Authorization", None)
        signed = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in UNSIGNED_HEADERS
        }
        path, query = split_target(request.url)
        request.headers["Authorization"] = signing.authorization(
            self._ak, self._sk, request.method, path, query, signed, request.content
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request


class TokenAuth(httpx.Auth):
    """IAM token auth: ``X-Auth-Token`` instead of a signature."""

    def __init__(self, credentials: Credentials, project_id: str) -> None:
        if not credentials.token:
            raise ConfigError(f"token auth needs a token: set {TOKEN_ENV}")
        self._token = credentials.token
        self._project_id = project_id

    def __repr__(self) -> str:
        return f"TokenAuth(token='***', project_id={self._project_id!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Project-Id"] = self._project_id
        request.headers["X-Auth-Token"] = self._token
        yield request
