"""Reading a whole project: what no page held is read by id; only ShowAsset's "not found" makes
an asset missing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from reconciler.api.errors import AssetNotFound, CredentialsRejected, ServiceError
from reconciler.engine.diff import Desired
from reconciler.engine.drift import DriftStatus, project_drift
from reconciler.live.fetch import ProjectReads


class Project:
    """A project whose pages lose some assets (``off_pages``); ids and ShowAsset see them all."""

    def __init__(self, assets: dict[str, dict[str, Any]], off_pages: set[str]) -> None:
        self.assets = assets
        self.off_pages = off_pages
        self.fetched: list[list[str]] = []
        self.shown: list[str] = []
        self.fetch_error: Exception | None = None

    async def list_all(self) -> list[dict[str, Any]]:
        return [a for i, a in self.assets.items() if i not in self.off_pages]

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> Mapping[str, Any]:
        self.fetched.append(list(asset_ids))
        if self.fetch_error is not None:
            raise self.fetch_error
        return {i: self.assets[i] for i in asset_ids if i in self.assets}

    async def show(self, asset_id: str, app_user_id: str | None = None) -> Any:
        self.shown.append(asset_id)
        if asset_id not in self.assets:
            raise AssetNotFound(
                method="GET",
                path=f"/v1/p/digital-assets/{asset_id}",
                status=400,
                error_code="MSS.10001001",
                error_msg="Asset not found",
                request_id="r-9",
            )
        return self.assets[asset_id]


def row(n: int, **fields: Any) -> dict[str, Any]:
    return {"asset_id": f"a{n}", "asset_name": f"n{n}", "asset_type": "IMAGE", **fields}


def wanted(*numbers: int) -> list[Desired]:
    return [Desired(f"a{n}", {"asset_name": f"n{n}"}) for n in numbers]


async def test_an_asset_on_no_page_is_read_by_id_and_is_not_missing() -> None:
    project = Project({f"a{n}": row(n) for n in range(5)}, off_pages={"a2", "a4"})
    read = await ProjectReads(project, 4).finish(wanted(0, 2))
    assert project.fetched == [["a2"]]  # a4 is not managed: nothing to ask for
    assert project.shown == []
    assert set(read.rows) == {"a0", "a1", "a2", "a3"}
    assert read.missing == {} and read.failed == {}


async def test_missing_only_when_showasset_says_not_found_and_in_its_words() -> None:
    project = Project({"a0": row(0)}, off_pages=set())
    read = await ProjectReads(project, 4).finish(wanted(0, 7))
    assert project.fetched == [["a7"]] and project.shown == ["a7"]
    (answer,) = read.missing.values()
    assert answer.error_code == "MSS.10001001"
    assert answer.message == "ShowAsset answered 400 MSS.10001001 Asset not found (request id r-9)"
    drift = project_drift(
        wanted(0, 7), list(read.rows.values()), project_id="p", missing=read.missing
    )
    gone = drift.assets[1]
    assert gone.status is DriftStatus.MISSING
    assert gone.errors == [
        "asset a7 does not exist in project p: "
        "ShowAsset answered 400 MSS.10001001 Asset not found (request id r-9)"
    ]


async def test_a_failed_read_by_id_is_an_error_of_that_asset_not_a_missing_one() -> None:
    project = Project({"a0": row(0), "a1": row(1)}, off_pages={"a1"})
    project.fetch_error = ServiceError(method="GET", path="/v1/p/digital-assets", status=503)
    read = await ProjectReads(project, 4).finish(wanted(0, 1))  # does not raise
    assert set(read.failed) == {"a1"} and read.missing == {} and project.shown == []
    drift = project_drift(wanted(0, 1), list(read.rows.values()), failed=read.failed)
    assert [a.status for a in drift.assets] == [DriftStatus.IN_SYNC, DriftStatus.ERROR]


async def test_refused_credentials_on_a_read_by_id_end_the_run() -> None:
    project = Project({"a0": row(0)}, off_pages={"a0"})
    project.fetch_error = CredentialsRejected(method="GET", path="/v1/p/x", status=401)
    with pytest.raises(CredentialsRejected):
        await ProjectReads(project, 4).finish(wanted(0))


def test_a_missing_row_never_names_a_code_the_service_did_not_send() -> None:
    drift = project_drift(wanted(3), [], project_id="p")
    (gone,) = drift.assets
    assert gone.status is DriftStatus.MISSING
    assert "MSS." not in " ".join(gone.errors)
    assert gone.errors == [
        "asset a3 does not exist in project p: "
        "no page of the project and no read by its id returned it"
    ]
