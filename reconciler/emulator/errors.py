"""Failures of the emulator: API errors answered to clients, and setup errors shown to users."""

from __future__ import annotations

from reconciler.errors import ReconcilerError


class EmulatorError(ReconcilerError):
    """The emulator cannot start as asked (bad seed file, unusable database, bad flags)."""


class ApiError(Exception):
    """An error response in the service's shape: ``{error_code, error_msg}`` with a status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        gateway: bool = False,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        # API-gateway errors (APIG.*) also carry request_id in the body, as the gateway does.
        self.gateway = gateway


# The documented codes (metastudio-facts.md, section 6), named once.
ASSET_NOT_FOUND = "MSS.10001001"
REQUEST_JSON = "MSS.10000002"
PARAM_VALIDATION = "MSS.10000003"
INVALID_PARAMETER = "MSS.00000003"
API_NOT_FOUND = "MSS.00010003"
METHOD_NOT_ALLOWED = "MSS.00010004"
TENANT_MISMATCH = "MSS.00010009"
INTERNAL_ERROR = "MSS.000000002"
IAM_AUTH = "APIGW.0301"
THROTTLED = "APIG.0308"


def asset_not_found() -> ApiError:
    return ApiError(400, ASSET_NOT_FOUND, "Asset not found")


def validation(message: str) -> ApiError:
    return ApiError(400, PARAM_VALIDATION, f"Parameter validation abnormal: {message}")


def unauthorized(reason: str) -> ApiError:
    return ApiError(
        401, IAM_AUTH, f"Incorrect IAM authentication information: {reason}", gateway=True
    )
