"""The planner: manifest order, per-asset fetch errors, run-level failures, threshold warning."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.errors import (
    AssetNotFound,
    CredentialsRejected,
    ServiceError,
    ServiceUnreachable,
)
from reconciler.emulator import samples
from reconciler.engine.diff import Desired
from reconciler.engine.fingerprint import write_only_fingerprint
from reconciler.engine.plan import Action
from reconciler.engine.planner import desired_from_loaded
from reconciler.live.fetch import CHUNK, LiveReads
from reconciler.live.plan import build_plan
from reconciler.manifest.loader import load_manifests
from reconciler.state.sqlite import SqliteStore


class Service:
    """An in-memory live source; chunks for ``broken_user`` fail like an exhausted retry."""

    def __init__(
        self,
        assets: dict[str, dict[str, Any]],
        broken_user: str | None = None,
        error: Exception | None = None,
    ) -> None:
        self.assets = assets
        self.broken_user = broken_user
        self.error = error
        self.calls: list[list[str]] = []
        self.shown: list[str] = []

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> Mapping[str, Any]:
        self.calls.append(list(asset_ids))
        users = set((app_user_ids or {}).values())
        if self.error is not None and (self.broken_user is None or self.broken_user in users):
            raise self.error
        return {i: self.assets[i] for i in asset_ids if i in self.assets}

    async def show(self, asset_id: str, app_user_id: str | None = None) -> Any:
        """ShowAsset: an asset the service does not know is 400 ``MSS.10001001``."""
        self.shown.append(asset_id)
        if asset_id not in self.assets:
            raise AssetNotFound(
                method="GET",
                path=f"/v1/p/digital-assets/{asset_id}",
                status=400,
                error_code="MSS.10001001",
                error_msg="Asset not found",
            )
        return self.assets[asset_id]


def live(i: int) -> dict[str, Any]:
    return samples.image(i, asset_id=f"a{i}", asset_name=f"n{i}", tags=["A"])


def failure() -> ServiceError:
    return ServiceError(method="GET", path="/v1/p/digital-assets", status=503, error_code="X")


async def plan(items: list[Desired], service: Service, state: Any = None) -> Any:
    return await build_plan(
        items, service, state=state, target_name="t", project_id="p", endpoint="http://e"
    )


async def test_plan_keeps_manifest_order_and_fetches_in_pages() -> None:
    service = Service({f"a{i}": live(i) for i in range(250)})
    items = [Desired(f"a{i}", {"tags": ["A"]}) for i in reversed(range(250))]
    result = await plan(items, service)
    assert [a.asset_id for a in result.assets] == [d.asset_id for d in items]
    assert sorted(len(c) for c in service.calls) == [50, CHUNK, CHUNK]
    assert result.summary.unchanged == 250
    assert result.created_at is not None and result.created_at.endswith("Z")
    assert (result.target, result.project_id, result.endpoint) == ("t", "p", "http://e")


async def test_a_failed_chunk_only_fails_its_own_assets() -> None:
    service = Service({f"a{i}": live(i) for i in range(4)}, broken_user="u2", error=failure())
    items = [
        Desired(f"a{i}", {"asset_name": "x"}, app_user_id="u2" if i == 3 else None)
        for i in range(4)
    ]
    result = await plan(items, service)
    actions = [a.action for a in result.assets]
    assert actions == [Action.UPDATE, Action.UPDATE, Action.UPDATE, Action.ERROR]
    assert "503" in result.assets[3].errors[0]
    assert result.assets[3].error_code == "X"


async def test_when_nothing_can_be_read_the_run_fails() -> None:
    service = Service({"a0": live(0)}, error=failure())
    with pytest.raises(ServiceError):
        await plan([Desired("a0", {})], service)


async def test_rejected_credentials_fail_the_run_even_inside_a_task_group() -> None:
    rejected = CredentialsRejected(method="GET", path="/", status=401)
    service = Service({"a0": live(0)}, broken_user="u", error=ExceptionGroup("x", [rejected]))
    items = [Desired("a0", {}), Desired("a1", {}, app_user_id="u")]
    with pytest.raises(CredentialsRejected):
        await plan(items, service)


async def test_records_come_from_the_state_store(tmp_path: Path) -> None:
    state = SqliteStore(tmp_path / "s.sqlite").records
    review = {"review_config": {"no_need_review": True}}
    state.record("p", "a0", write_only_fingerprint(review))
    service = Service({"a0": live(0), "a1": live(1)})
    result = await plan([Desired("a0", review), Desired("a1", review)], service, state)
    assert [a.action for a in result.assets] == [Action.NOOP, Action.UPDATE]


def test_desired_from_a_loaded_manifest(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: reconciler.metastudio/v1\n"
        "kind: DigitalAsset\n"
        "metadata:\n"
        "  asset_id: a1\n"
        "  app_user_id: u1\n"
        "  labels: {team: x}\n"
        "spec:\n"
        "  asset_name: Sara\n"
        "  system_properties: {BACKGROUND_IMG: 'Yes'}\n"
    )
    (loaded,) = load_manifests([tmp_path])
    d = desired_from_loaded(loaded)
    assert (d.asset_id, d.app_user_id, d.name, d.labels) == ("a1", "u1", "Sara", {"team": "x"})
    assert d.source == f"{tmp_path / 'a.yaml'}:1:1"
    assert d.desired == {"asset_name": "Sara", "system_properties": {"BACKGROUND_IMG": "Yes"}}


class PagedService(Service):
    """A live source that can also page through the whole project, like the real client."""

    def __init__(
        self,
        assets: dict[str, dict[str, Any]],
        broken_offsets: frozenset[int] = frozenset(),
        error: Exception | None = None,
    ) -> None:
        super().__init__(assets)
        self.broken_offsets = broken_offsets
        self.page_error = error or failure()
        self.pages: list[int] = []

    async def list_page(self, offset: int, limit: int = CHUNK) -> tuple[int, list[Any]]:
        self.pages.append(offset)
        if offset in self.broken_offsets:
            raise self.page_error
        every = list(self.assets.values())
        return len(every), every[offset : offset + limit]


def managed(n: int, *, user: str | None = None) -> list[Desired]:
    return [Desired(f"a{i}", {"tags": ["A"]}, app_user_id=user) for i in range(n)]


async def test_a_mostly_managed_project_is_paged_through_instead_of_asked_for_by_ids() -> None:
    service = PagedService({f"a{i}": live(i) for i in range(260)})  # 10 unmanaged assets
    result = await plan(managed(250), service)
    assert sorted(service.pages) == [0, 100, 200]
    assert service.calls == []  # nothing asked for by id: every asset was on a page
    assert result.summary.unchanged == 250
    assert [a.asset_id for a in result.assets] == [f"a{i}" for i in range(250)]


async def test_a_large_project_with_few_managed_assets_is_read_by_ids() -> None:
    service = PagedService({f"a{i}": live(i) for i in range(1000)})
    items = managed(1000)[::4]  # 250 of 1,000: 3 id chunks < 10 pages
    result = await plan(items, service)
    assert service.pages == [0]  # the first page tells the size; then ids
    assert sorted(len(c) for c in service.calls) == [25, CHUNK, CHUNK]  # 25 were on page 0
    assert not {i for c in service.calls for i in c} & {f"a{i}" for i in range(100)}
    assert result.summary.unchanged == 250


async def test_assets_on_no_page_are_asked_for_by_id_before_they_count_as_missing() -> None:
    service = PagedService({f"a{i}": live(i) for i in range(200)})
    result = await plan(managed(205), service)
    assert service.calls == [[f"a{i}" for i in range(200, 205)]]
    # Missing only when the service says so: ShowAsset answered "not found" for each.
    assert service.shown == [f"a{i}" for i in range(200, 205)]
    actions = {a.asset_id: a.action for a in result.assets}
    assert actions["a0"] == Action.NOOP and actions["a204"] == Action.ERROR
    assert "does not exist" in " ".join(result.assets[-1].errors)
    assert result.assets[-1].error_code == "MSS.10001001"


async def test_a_failed_page_is_read_by_ids_and_only_its_assets_fail() -> None:
    service = PagedService({f"a{i}": live(i) for i in range(300)}, frozenset({100}))
    result = await plan(managed(300), service)
    assert service.calls == [[f"a{i}" for i in range(100, 200)]]
    assert result.summary.unchanged == 300  # the by-id read of the failed page's assets worked

    service = PagedService({f"a{i}": live(i) for i in range(300)}, frozenset({100}))
    service.error = failure()  # the by-id read fails too
    result = await plan(managed(300), service)
    failed = [a.asset_id for a in result.assets if a.action == Action.ERROR]
    assert failed == [f"a{i}" for i in range(100, 200)]


async def test_refused_credentials_on_the_first_page_end_the_run() -> None:
    refused = CredentialsRejected(method="GET", path="/v1/p/digital-assets", status=401)
    service = PagedService({f"a{i}": live(i) for i in range(300)}, frozenset({0}), refused)
    with pytest.raises(CredentialsRejected):
        await plan(managed(300), service)
    assert service.calls == []


async def test_assets_with_an_app_user_id_are_always_read_by_ids_with_their_header() -> None:
    service = PagedService({f"a{i}": live(i) for i in range(300)})
    items = managed(300)
    items[0] = Desired("a0", {"tags": ["A"]}, app_user_id="u1")
    users: list[set[str | None]] = []
    fetch = service.fetch

    async def recording(
        asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> Mapping[str, Any]:
        users.append(set((app_user_ids or {}).values()))
        return await fetch(asset_ids, app_user_ids)

    service.fetch = recording  # type: ignore[method-assign]
    result = await plan(items, service)
    assert sorted(service.pages) == [0, 100, 200] and service.calls == [["a0"]]
    assert users == [{"u1"}]
    assert result.summary.unchanged == 300


async def test_an_unreachable_service_on_the_first_page_fails_the_run_without_waiting_twice() -> (
    None
):
    down = ServiceUnreachable(method="GET", path="/v1/p/digital-assets", error_msg="refused")
    service = PagedService({f"a{i}": live(i) for i in range(300)}, frozenset({0}), down)
    with pytest.raises(ServiceUnreachable):
        await plan(managed(300), service)
    assert service.pages == [0] and service.calls == []  # no second round of retries by id


async def test_an_asset_the_client_marked_unusable_fails_alone() -> None:
    from reconciler.api.client import LiveAsset

    bad = LiveAsset(live(0), where=("GET", "/v1/p/digital-assets", 200))
    bad.problem = "asset_order is not a finite number (NaN or Infinity)"
    service = Service({"a0": bad, "a1": LiveAsset(live(1))})  # type: ignore[dict-item]
    result = await plan([Desired("a0", {"tags": ["B"]}), Desired("a1", {"tags": ["B"]})], service)
    first, second = result.assets
    assert first.action is Action.ERROR
    assert "asset a0: asset_order is not a finite number" in first.errors[0]
    assert second.action is Action.UPDATE


# --- reads while the manifests are still loading (LiveReads) -----------------------------------


class Arrivals:
    """What ``on_chunk`` was handed, in order."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, chunk: list[Desired], live_rows: dict[str, dict[str, Any]]) -> None:
        self.ids.extend(d.asset_id for d in chunk if d.asset_id in live_rows)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_paging_starts_before_any_manifest_is_known_and_rows_wait_for_theirs() -> None:
    service = PagedService({f"a{i}": live(i) for i in range(300)})
    seen = Arrivals()
    reads: LiveReads[Desired] = LiveReads(service, 4, seen)
    task = asyncio.ensure_future(reads.run(expected=300))
    await settle()
    assert sorted(service.pages) == [0, 100, 200]  # every page read, nothing wanted yet
    assert seen.ids == []
    reads.want(managed(300)[:150])  # the first manifests are valid: their rows are handed over
    assert seen.ids == [f"a{i}" for i in range(150)]
    reads.want(managed(300)[150:])
    reads.close()
    await task
    assert seen.ids == [f"a{i}" for i in range(300)]
    assert service.calls == [] and reads.failures() == {}


async def test_ids_are_sent_as_soon_as_a_chunk_of_them_is_known() -> None:
    service = Service({f"a{i}": live(i) for i in range(250)})
    reads: LiveReads[Desired] = LiveReads(service, 4, Arrivals())
    task = asyncio.ensure_future(reads.run(expected=250))
    reads.want(managed(250)[:120])
    await settle()
    assert [len(c) for c in service.calls] == [CHUNK]  # a full chunk went out before the end
    reads.want(managed(250)[120:])
    await settle()
    assert [len(c) for c in service.calls] == [CHUNK, CHUNK]
    reads.close()
    await task
    assert sorted(len(c) for c in service.calls) == [50, CHUNK, CHUNK]


class GatedPages(PagedService):
    """Pages after the first wait until the test lets them through."""

    def __init__(self, assets: dict[str, dict[str, Any]]) -> None:
        super().__init__(assets)
        self.gate = asyncio.Event()

    async def list_page(self, offset: int, limit: int = CHUNK) -> tuple[int, list[Any]]:
        if offset:
            await self.gate.wait()
        return await super().list_page(offset, limit)


async def test_cancelling_the_reads_sends_nothing_more() -> None:
    service = GatedPages({f"a{i}": live(i) for i in range(1000)})
    reads: LiveReads[Desired] = LiveReads(service, 2, Arrivals())
    task = asyncio.ensure_future(reads.run(expected=1000))
    await settle()
    started = list(service.pages)
    task.cancel()  # a manifest turned out invalid
    with pytest.raises(asyncio.CancelledError):
        await task
    service.gate.set()
    await settle()
    assert service.pages == started and len(started) <= 3  # page 0 and the two in flight
    assert service.calls == []


async def test_pages_not_worth_sending_after_all_are_dropped_for_ids() -> None:
    service = GatedPages({f"a{i}": live(i) for i in range(1000)})
    reads: LiveReads[Desired] = LiveReads(service, 1, Arrivals())
    task = asyncio.ensure_future(reads.run(expected=1000))  # 1,000 files ...
    await settle()
    reads.want([Desired("a500", {}), Desired("a7", {})])  # ... but only two for this target
    reads.close()
    service.gate.set()
    await task
    assert len(service.pages) <= 2  # page 0, and at most the one page already in flight
    assert service.calls in ([["a500"]], [])
    assert reads.failures() == {}
