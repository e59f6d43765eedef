"""The planner: manifest order, per-asset fetch errors, run-level failures, threshold warning."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.errors import CredentialsRejected, ServiceError
from reconciler.engine.diff import Desired
from reconciler.engine.fingerprint import write_only_fingerprint
from reconciler.engine.plan import Action
from reconciler.engine.planner import CHUNK, build_plan, desired_from_loaded
from reconciler.engine.state import WriteOnlyState
from reconciler.manifest.loader import load_manifests


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

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> Mapping[str, Any]:
        self.calls.append(list(asset_ids))
        users = set((app_user_ids or {}).values())
        if self.error is not None and (self.broken_user is None or self.broken_user in users):
            raise self.error
        return {i: self.assets[i] for i in asset_ids if i in self.assets}


def live(i: int) -> dict[str, Any]:
    return {"asset_id": f"a{i}", "asset_name": f"n{i}", "asset_state": "ACTIVED", "tags": ["A"]}


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


async def test_threshold_warning_is_attached_to_the_plan() -> None:
    service = Service({f"a{i}": live(i) for i in range(20)})
    items = [Desired(f"a{i}", {"asset_name": "new" if i < 7 else f"n{i}"}) for i in range(20)]
    result = await plan(items, service)
    assert len(result.warnings) == 1
    assert "7 of 20" in result.warnings[0]


async def test_records_come_from_the_state_store(tmp_path: Path) -> None:
    state = WriteOnlyState(tmp_path / "s.sqlite")
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
