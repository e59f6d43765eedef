"""``list_all``: a ``count`` that is off never ends paging early, and paging stays bounded."""

from __future__ import annotations

import httpx
import pytest

from reconciler.api.auth import Credentials
from reconciler.api.client import MetaStudioClient
from reconciler.api.config import RateLimits, Target
from reconciler.api.errors import ServiceError

TARGET = Target(
    name="t",
    region=None,
    project_id="p",
    endpoint="http://metastudio.test",
    rate_limits=RateLimits(list=0, show=0, update=0),
)


def project(rows: int, count: int, offsets: list[int]) -> MetaStudioClient:
    """A service with ``rows`` assets that answers every page with ``count``."""
    ids = [f"a{i:05d}" for i in range(rows)]

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        limit = int(request.url.params["limit"])
        offsets.append(offset)
        page = [{"asset_id": i} for i in ids[offset : offset + limit]]
        return httpx.Response(200, json={"count": count, "assets": page})

    transport = httpx.MockTransport(handler)
    return MetaStudioClient(TARGET, Credentials(ak="ak", sk="sk"), transport=transport)


@pytest.mark.parametrize("count", [0, 1, 100, 149, 250])
async def test_a_count_lower_than_the_rows_still_reads_every_row(count: int) -> None:
    offsets: list[int] = []
    async with project(250, count, offsets) as client:
        assets = await client.list_all()
    assert sorted(a.asset_id for a in assets) == [f"a{i:05d}" for i in range(250)]
    assert {0, 100, 200} <= set(offsets) <= {0, 100, 200, 300}  # the short page ends it


async def test_a_project_of_whole_pages_asks_for_one_more_page_to_see_the_end() -> None:
    offsets: list[int] = []
    async with project(300, 300, offsets) as client:
        assets = await client.list_all()
    assert len(assets) == 300
    assert sorted(offsets) == [0, 100, 200, 300]


async def test_past_the_count_pages_are_asked_for_one_then_two_then_four_at_once() -> None:
    offsets: list[int] = []
    async with project(1050, 100, offsets) as client:
        assets = await client.list_all()
    assert len(assets) == 1050
    # rounds of 1, 2, 4 and 8 pages (parallelism 8): 100 | 200 300 | 400..700 | 800..1500
    assert sorted(offsets) == list(range(0, 1600, 100))


async def test_a_count_higher_than_the_rows_stops_at_the_first_empty_page() -> None:
    offsets: list[int] = []
    async with project(250, 10**9, offsets) as client:
        assets = await client.list_all()
    assert len(assets) == 250
    assert max(offsets) <= 100 * 8  # one round of pages, not 10**7 of them


async def test_a_service_repeating_its_first_page_past_a_low_count_is_stopped() -> None:
    offsets: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        offsets.append(int(request.url.params["offset"]))
        page = [{"asset_id": f"a{i}"} for i in range(100)]  # whatever the offset
        return httpx.Response(200, json={"count": 0, "assets": page})

    transport = httpx.MockTransport(handler)
    async with MetaStudioClient(TARGET, Credentials(ak="a", sk="s"), transport=transport) as client:
        with pytest.raises(ServiceError, match="page at offset 100 repeats assets already read"):
            await client.list_all()
    assert offsets == [0, 100]
