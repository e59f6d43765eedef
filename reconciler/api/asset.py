"""One live asset as a read returned it: the exact JSON first, a typed view only when asked."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from reconciler.api.errors import ServiceError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from reconciler.api.models import DigitalAssetInfo


class LiveAsset:
    """One asset as the service returned it: the exact JSON, and a lenient typed view on demand.

    The engine diffs ``raw``; the typed ``info`` is validated only when first read, because
    validating every asset of a 10,000-asset plan cost more CPU than diffing them.  The id is
    checked when the asset is received, so a body without a string ``asset_id`` still fails at
    once.
    """

    def __init__(
        self,
        raw: dict[str, Any],
        request_id: str | None = None,
        *,
        where: tuple[str, str, int] | None = None,
    ) -> None:
        self.raw = raw
        self.request_id = request_id
        # Why this asset cannot be used (a NaN in it): the reader reports it as that asset's error.
        self.problem: str | None = None
        self._where = where  # (method, path, status) of the response, for a bad-body error

    def __repr__(self) -> str:
        return f"LiveAsset(asset_id={self.asset_id!r}, request_id={self.request_id!r})"

    @property
    def asset_id(self) -> str:
        asset_id: str = self.raw["asset_id"]
        return asset_id

    def problem_error(self) -> ServiceError | None:
        """The error that stands for :attr:`problem` (this asset alone is unusable), if any."""
        if self.problem is None:
            return None
        return self._unexpected(f"asset {self.asset_id}: {self.problem}")

    @functools.cached_property
    def info(self) -> DigitalAssetInfo:
        """The lenient typed view; a value it cannot read is a :class:`ServiceError`.

        The models are imported here, when a typed view is first asked for: a plan diffs the
        raw JSON and never needs them."""
        from pydantic import ValidationError

        from reconciler.api.models import DigitalAssetInfo

        try:
            return DigitalAssetInfo.model_validate(self.raw)
        except ValidationError as exc:
            raise self._unexpected(_first_error(exc)) from None

    def _unexpected(self, problem: str) -> ServiceError:
        method, path, status = self._where or ("GET", "", 200)
        return ServiceError(
            method=method,
            path=path,
            status=status,
            error_msg=f"unexpected response: {problem}",
            request_id=self.request_id,
        )


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
