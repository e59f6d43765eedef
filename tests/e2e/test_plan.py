"""build_plan end to end over real sockets: the real client against the emulator.

One fixture of live assets covers every rule of docs/field-semantics.md; the plan's JSON must carry
exactly the expected changes and PUT bodies.  Then the bodies are sent and a second plan must
find nothing to do (write-only values recorded in a real SQLite state file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.api.client import RetryPolicy
from reconciler.emulator import samples
from reconciler.emulator.store import generate_assets
from reconciler.emulator.testing import RunningEmulator, run_emulator
from reconciler.engine.diff import Desired
from reconciler.engine.plan import Plan
from reconciler.live.plan import build_plan
from reconciler.state import WriteOnlyRecords
from reconciler.state.sqlite import SqliteStore

pytestmark = pytest.mark.e2e

FAST = RetryPolicy(max_retries=3, backoff_base=0.01, backoff_cap=0.05, throttle_delay=(0.01, 0.02))


aid = samples.asset_id


def human(n: int, **extra: Any) -> dict[str, Any]:
    return samples.human_model(
        aid(n),
        asset_name=f"Human {n}",
        asset_description="",
        auto_operation_config=[{"operation": "BLOCK", "operation_time": "2025-01-10T00:00:00Z"}],
        **extra,
    )


VOICE = {
    "asset_id": aid(3),
    "asset_name": "Voice 3",
    "asset_type": "VOICE_MODEL",
    "asset_state": "ACTIVED",
    "asset_extra_meta": {
        "voice_model_meta": {
            "speed_ratio": 1,
            "sex": "FEMALE",
            "voice_capability": {"is_support_srt": True},
        }
    },
}

LIVE = [
    human(1),
    human(2),
    VOICE,
    human(4),
    human(5, asset_state="BLOCK", block_reason_code="R1"),
    human(6),
    human(7),
]

SPECS: dict[int, dict[str, Any]] = {
    # in sync through normalisation: reordered sets, an instant in another offset, absent == empty
    1: {
        "asset_name": "Human 1",
        "asset_description": "",
        "tags": ["FEMALE", "NEWS"],
        "asset_extra_meta": {"human_model_2d_meta": {"device_names": ["d2", "d1"]}},
        "system_properties": {"CREATED_BY_PLATFORM": "Yes", "BACKGROUND_IMG": "Yes"},
        "auto_operation_config": [
            {"operation": "BLOCK", "operation_time": "2025-01-10T08:00:00+08:00"}
        ],
        "supported_service": [],
    },
    # nested change: the whole block is sent, system properties as operations, set change
    2: {
        "tags": ["NEWS", "SPORTS"],
        "asset_extra_meta": {"human_model_2d_meta": {"support_live": True}},
        "system_properties": {"BACKGROUND_IMG": "No"},
    },
    # 1 == 1.0; a real change fills the block from live without the read-only voice_capability
    3: {"asset_extra_meta": {"voice_model_meta": {"speed_ratio": 1.0, "sex": "MALE"}}},
    # write-only: sent because nothing was recorded yet
    4: {"asset_name": "Human 4", "review_config": {"no_need_review": True}},
    # blocked
    5: {"asset_name": "Renamed"},
    # block for another type
    6: {"asset_extra_meta": {"voice_model_meta": {"sex": "MALE"}}},
    # missing
    9: {"asset_name": "Ghost"},
    # ordered list: order matters
    7: {
        "auto_operation_config": [
            {"operation": "DELETE", "operation_time": "2026-01-01T00:00:00Z"},
            {"operation": "BLOCK", "operation_time": "2025-01-10T00:00:00Z"},
        ]
    },
}


def desired(overrides: dict[int, dict[str, Any]] | None = None) -> list[Desired]:
    specs = {**SPECS, **(overrides or {})}
    return [Desired(aid(n), spec, source=f"m.yaml:{n}:1") for n, spec in specs.items()]


async def plan(
    emu: RunningEmulator,
    state: WriteOnlyRecords,
    overrides: dict[int, dict[str, Any]] | None = None,
) -> Plan:
    async with emu.client(retry=FAST) as client:
        return await build_plan(
            desired(overrides),
            client,
            state=state,
            target_name="emu",
            project_id=emu.project_id,
            endpoint=emu.base_url,
        )


def rows(plan: Plan) -> dict[str, dict[str, Any]]:
    return {row["asset_id"]: row for row in plan.to_json()["assets"]}


async def test_plan_over_the_wire_has_exactly_the_expected_changes(tmp_path: Path) -> None:
    state = SqliteStore(tmp_path / "state.sqlite").records
    with run_emulator(LIVE) as emu:
        result = await plan(emu, state)
        gets = [r for r in emu.requests() if r["method"] == "GET"]
    lists = [r for r in gets if r["path"].endswith("/digital-assets")]
    assert len(lists) == 1  # one bulk list request for all eight assets
    # Asset 1 manages asset_description and supported_service, which its list row lacks: it is
    # read whole with ShowAsset before it is diffed (absent there too: equal to empty).  Asset
    # 9, which the list did not return, is asked for with ShowAsset: missing only when the
    # service answers "not found".
    assert [r["path"].rsplit("/", 1)[1] for r in gets if r not in lists] == [aid(1), aid(9)]
    by_id = rows(result)
    assert {k: v["action"] for k, v in by_id.items()} == {
        aid(1): "no-op",
        aid(2): "update",
        aid(3): "update",
        aid(4): "update",
        aid(5): "blocked",
        aid(6): "error",
        aid(9): "error",
        aid(7): "update",
    }
    assert by_id[aid(1)]["body"] is None
    assert by_id[aid(1)]["unchanged"] == 8
    assert by_id[aid(2)]["body"] == {
        "tags": ["NEWS", "SPORTS"],
        "asset_extra_meta": {
            "human_model_2d_meta": {
                "support_live": True,
                "model_resolution": "1080P",
                "model_version": "V3",
                "device_names": ["d1", "d2"],
            }
        },
        "system_properties": [
            {"action": "ADD", "key": "BACKGROUND_IMG", "value": "No"},
        ],  # CREATED_BY_PLATFORM is not named: not touched
    }
    tags = by_id[aid(2)]["changes"][0]
    assert (tags["path"], tags["kind"], tags["added"], tags["removed"]) == (
        "tags",
        "set",
        ["SPORTS"],
        ["FEMALE"],
    )
    assert by_id[aid(3)]["body"] == {
        "asset_extra_meta": {"voice_model_meta": {"speed_ratio": 1.0, "sex": "MALE"}}
    }
    assert [c["path"] for c in by_id[aid(3)]["changes"][0]["children"]] == [
        "asset_extra_meta.voice_model_meta.sex"
    ]
    assert by_id[aid(4)]["body"] == {"review_config": {"no_need_review": True}}
    assert by_id[aid(4)]["changes"][0]["kind"] == "write-only"
    assert by_id[aid(5)]["body"] is None and "BLOCK" in by_id[aid(5)]["errors"][0]
    assert "human_model_2d_meta" in by_id[aid(6)]["errors"][0]
    assert by_id[aid(9)]["error_code"] == "MSS.10001001"
    assert by_id[aid(7)]["body"] == {"auto_operation_config": SPECS[7]["auto_operation_config"]}
    assert result.to_json()["summary"] == {
        "to_change": 4,
        "unchanged": 1,
        "errors": 2,
        "blocked": 1,
        "ignored_fields": 0,
        "violations": 0,
    }


async def test_after_sending_the_bodies_a_new_plan_is_empty(tmp_path: Path) -> None:
    state = SqliteStore(tmp_path / "state.sqlite").records
    with run_emulator(LIVE) as emu:
        first = await plan(emu, state)
        async with emu.client(retry=FAST) as client:
            for row in first.assets:
                if row.body is not None:
                    await client.update(row.asset_id, row.body, row.app_user_id)
                    if row.write_only_fingerprint:
                        state.record(emu.project_id, row.asset_id, row.write_only_fingerprint)
        second = await plan(emu, state)
    again = rows(second)
    assert [k for k, v in again.items() if v["action"] == "update"] == []
    assert again[aid(4)]["write_only"] == ["review_config"]
    assert again[aid(4)]["write_only_applied_at"] is not None
    assert again[aid(4)]["action"] == "no-op"
    # a change to the write-only value in the manifest reaches the body again
    changed = {4: {**SPECS[4], "review_config": {"no_need_review": False}}}
    with run_emulator(LIVE) as emu:
        third = await plan(emu, state, changed)
    assert rows(third)[aid(4)]["body"] == {"review_config": {"no_need_review": False}}


async def test_a_mostly_managed_project_is_read_in_short_pages(tmp_path: Path) -> None:
    """250 of 260 assets managed: three short pages, and only the missing asset asked by id."""
    assets = generate_assets(260, seed=3, project_id="p-test")
    items = [Desired(a["asset_id"], {"asset_name": a["asset_name"]}) for a in assets[:250]]
    items.append(Desired("not-created-yet", {"asset_name": "x"}))
    state = SqliteStore(tmp_path / "state.sqlite").records
    with run_emulator(assets) as emu:
        async with emu.client(retry=FAST) as client:
            result = await build_plan(
                items,
                client,
                state=state,
                target_name="emu",
                project_id=emu.project_id,
                endpoint=emu.base_url,
            )
        lists = [r for r in emu.requests() if r["method"] == "GET"]
    shown = [r["path"].rsplit("/", 1)[1] for r in lists if not r["path"].endswith("-assets")]
    lists = [r for r in lists if r["path"].endswith("/digital-assets")]
    queries = [dict(pair for pair in r["query"] if pair[0] != "asset_id") for r in lists]
    ids_asked = [pair[1] for r in lists for pair in r["query"] if pair[0] == "asset_id"]
    assert sorted(int(q["offset"]) for q in queries) == [0, 0, 100, 200]
    assert ids_asked == ["not-created-yet"]  # only the asset no page held is asked for by id
    assert shown == ["not-created-yet"]  # and then ShowAsset, which says it does not exist
    actions = [row.action.value for row in result.assets]
    assert actions[:250] == ["no-op"] * 250 and actions[250] == "error"
