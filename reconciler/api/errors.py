"""Failures of MetaStudio API calls, as one-line messages a user can act on.

Every error carries what identifies the failed call (method, path, status, service error code and
message, request id) and never any header, so no secret can travel inside an exception.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.constants import ASSET_NOT_FOUND
from reconciler.errors import ReconcilerError
from reconciler.logs import redact

THROTTLED = "APIG.0308"


class ApiError(ReconcilerError):
    """A MetaStudio call failed; ``str()`` is one line naming the call and the service's answer."""

    def __init__(
        self,
        *,
        method: str,
        path: str,
        status: int | None = None,
        error_code: str | None = None,
        error_msg: str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        self.request_id = request_id
        self.hint = hint
        super().__init__(redact(self._compose()))

    def _compose(self) -> str:
        parts = [str(self.status)] if self.status is not None else []
        if self.error_code and self.error_code != str(self.status):
            parts.append(self.error_code)
        if self.error_msg:
            parts.append(" ".join(self.error_msg.split()))
        text = f"{self.method} {self.path} failed: {' '.join(parts) or 'no response'}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        if self.hint:
            text += f"; {self.hint}"
        return text


class AssetNotFound(ApiError):
    """The service does not know the asset (400 ``MSS.10001001``)."""


class CredentialsRejected(ApiError):
    """401/403: the signature, token, project or permissions were refused; never retried."""


class Throttled(ApiError):
    """429 (``APIG.0308``) still answered after every retry."""


class ServiceError(ApiError):
    """5xx still answered after every retry, or a response that is not the documented JSON."""


class ServiceUnreachable(ApiError):
    """No HTTP answer at all (refused, reset, timed out) after every retry."""


def parse_error_body(text: str) -> tuple[str | None, str | None]:
    """(error_code, error_msg) from an error body, in the order the official SDK tries them.

    ``error_code``/``error_msg``, then ``errorCode``/``errorMsg``, then ``code``/``message``,
    then the same inside nested objects (e.g. ``{"error": {"code": ..., "message": ...}}``).
    """
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None, text.strip() or None
    if not isinstance(data, dict):
        return None, text.strip() or None
    return _from_dict(data)


def _from_dict(data: dict[str, Any]) -> tuple[str | None, str | None]:
    for code_key, msg_key in (("error_code", "error_msg"), ("errorCode", "errorMsg")):
        if code_key in data and msg_key in data:
            return _text(data[code_key]), _text(data[msg_key])
    if "code" in data and "message" in data:
        return _text(data["code"]), _text(data["message"])
    found: tuple[str | None, str | None] = (None, None)
    for value in data.values():
        if isinstance(value, dict):
            nested = _from_dict(value)
            if nested != (None, None):
                found = nested
    return found


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def error_for_status(
    *,
    method: str,
    path: str,
    status: int,
    body: str,
    request_id: str | None,
) -> ApiError:
    """The ApiError subclass for an HTTP error answer, with the body parsed like the SDK does."""
    code, msg = parse_error_body(body)
    code = code or str(status)
    cls: type[ApiError] = ApiError
    hint: str | None = None
    if status == 400 and code == ASSET_NOT_FOUND:
        cls = AssetNotFound
    elif status in (401, 403):
        cls = CredentialsRejected
        hint = (
            "check HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK (or HW_AUTH_TOKEN), the project id, "
            "the account's permissions and the system clock (signatures are valid for 15 minutes)"
        )
    elif status == 429:
        cls = Throttled
        hint = "lower the rate limits of this target in reconciler.yaml"
    elif status >= 500:
        cls = ServiceError
    return cls(
        method=method,
        path=path,
        status=status,
        error_code=code,
        error_msg=msg,
        request_id=request_id,
        hint=hint,
    )
