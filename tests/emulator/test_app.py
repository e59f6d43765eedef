"""The emulator's HTTP API over a real socket: list, show, update, and every documented error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.emulator.demo_seed import AVATAR_ID, IMAGE_ID, PPT_ID, VOICE_ID, demo_assets
from reconciler.emulator.store import generate_assets
from reconciler.emulator.testing import EmulatorFactory, RunningEmulator

BLOCKED_ID = "e2e00000-3333-4444-8555-666677778888"


def _error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error_code"]


# --- list ---------------------------------------------------------------------------------------


def test_list_pages_in_stable_order_with_total_count(emulator: EmulatorFactory) -> None:
    assets = generate_assets(25, project_id="p-test")
    emu = emulator(assets)
    seen: list[str] = []
    for offset in (0, 10, 20):
        page = emu.request("GET", emu.assets_path(), params=[("offset", str(offset))]).json()
        assert page["count"] == 25
        seen.extend(item["asset_id"] for item in page["assets"])
    expected = [
        a["asset_id"] for a in sorted(assets, key=lambda a: (a["create_time"], a["asset_id"]))
    ]
    assert seen == expected  # default limit 10, no duplicates, nothing skipped


def test_list_offset_past_the_end_is_empty_with_the_real_count(
    demo_emulator: RunningEmulator,
) -> None:
    page = demo_emulator.request(
        "GET", demo_emulator.assets_path(), params=[("offset", "500"), ("limit", "100")]
    ).json()
    assert page == {"count": 8, "assets": []}


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1"])
def test_list_rejects_limit_outside_1_to_100(demo_emulator: RunningEmulator, limit: str) -> None:
    response = demo_emulator.request("GET", demo_emulator.assets_path(), params=[("limit", limit)])
    assert _error(response) == (400, "MSS.00000003")
    assert "limit" in response.json()["error_msg"]


def test_list_accepts_limit_bounds(demo_emulator: RunningEmulator) -> None:
    for limit, size in (("1", 1), ("100", 8)):
        page = demo_emulator.request("GET", demo_emulator.assets_path(), params=[("limit", limit)])
        assert len(page.json()["assets"]) == size


def test_list_rejects_negative_offset(demo_emulator: RunningEmulator) -> None:
    response = demo_emulator.request("GET", demo_emulator.assets_path(), params=[("offset", "-1")])
    assert _error(response) == (400, "MSS.00000003")


def test_list_filters_by_repeated_asset_id(demo_emulator: RunningEmulator) -> None:
    params = [
        ("asset_id", VOICE_ID),
        ("asset_id", PPT_ID),
        ("asset_id", "missing"),
        ("limit", "100"),
    ]
    page = demo_emulator.request("GET", demo_emulator.assets_path(), params=params).json()
    assert page["count"] == 2
    assert {a["asset_id"] for a in page["assets"]} == {VOICE_ID, PPT_ID}


def _ids(emu: RunningEmulator, params: list[tuple[str, str]]) -> set[str]:
    page = emu.request("GET", emu.assets_path(), params=[*params, ("limit", "100")]).json()
    assert page["count"] == len(page["assets"])
    return {a["asset_id"] for a in page["assets"]}


def test_list_filters_name_tag_type_and_state(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    assert _ids(emu, [("name", "sara")]) == {AVATAR_ID}  # fuzzy, case-insensitive
    assert _ids(emu, [("tag", "HALF")]) == {AVATAR_ID}  # fuzzy on any tag
    assert _ids(emu, [("asset_type", "IMAGE,PPT")]) == {IMAGE_ID, PPT_ID, BLOCKED_ID}
    assert _ids(emu, [("asset_state", "BLOCK")]) == {BLOCKED_ID}
    both = [("tag", "NEWS,FEMALE"), ("tag_combination_type", "INTERSECTION")]
    assert _ids(emu, both) == {AVATAR_ID, VOICE_ID}
    assert _ids(emu, [("asset_type", "IMAGE"), ("asset_state", "ACTIVED")]) == {IMAGE_ID}


def test_list_returns_show_shape_without_write_only_fields(emulator: EmulatorFactory) -> None:
    seed = demo_assets("p-test")
    seed[0]["shared_config"] = {"shared_type": "PRIVATE"}
    emu = emulator(seed)
    page = emu.request("GET", emu.assets_path(), params=[("asset_id", VOICE_ID)]).json()
    listed = page["assets"][0]
    assert listed == emu.request("GET", emu.assets_path(VOICE_ID)).json()
    assert "shared_config" not in listed
    assert emu.store.get_write_only(VOICE_ID) == {"shared_config": {"shared_type": "PRIVATE"}}


# --- show and routing ---------------------------------------------------------------------------


def test_show_returns_the_asset_and_a_request_id(demo_emulator: RunningEmulator) -> None:
    response = demo_emulator.request("GET", demo_emulator.assets_path(AVATAR_ID))
    assert response.status_code == 200
    assert response.json()["asset_name"] == "Sara Model"
    assert len(response.headers["X-Request-Id"]) >= 16


def test_unknown_asset_is_400_asset_not_found(demo_emulator: RunningEmulator) -> None:
    for method, body in (("GET", None), ("PUT", {"asset_name": "x"})):
        response = demo_emulator.request(method, demo_emulator.assets_path("nope"), json_body=body)
        assert _error(response) == (400, "MSS.10001001")
        assert response.json()["error_msg"] == "Asset not found"
        assert response.headers["X-Request-Id"]


def test_unknown_route_and_wrong_method(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    assert _error(emu.request("GET", f"/v1/{emu.project_id}/elsewhere")) == (400, "MSS.00010003")
    wrong = emu.request("DELETE", emu.assets_path(AVATAR_ID))
    assert _error(wrong) == (400, "MSS.00010004")
    assert wrong.headers["X-Request-Id"]
    assert _error(emu.request("POST", emu.assets_path())) == (400, "MSS.00010004")


def test_project_in_path_must_be_the_callers(demo_emulator: RunningEmulator) -> None:
    response = demo_emulator.request(
        "GET", "/v1/other-project/digital-assets", headers={"X-Project-Id": "p-test"}
    )
    assert _error(response) == (400, "MSS.00010009")
    assert response.json()["error_msg"] == "urlTenantId is not equal tokenTenantId"


# --- auth ---------------------------------------------------------------------------------------


def test_wrong_sk_missing_auth_and_unknown_ak_are_401(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    path = emu.assets_path(AVATAR_ID)
    assert _error(emu.request("GET", path, sk="wrong")) == (401, "APIGW.0301")
    assert _error(emu.request("GET", path, sign=False)) == (401, "APIGW.0301")
    forged = emu.request(
        "GET",
        path,
        sign=False,
        headers={
            "X-Sdk-Date": "20240101T000000Z",
            "Authorization": "SDK-HMAC-SHA256 Access=other, SignedHeaders=host, Signature=00",
        },
    )
    body = forged.json()
    assert (forged.status_code, body["error_code"]) == (401, "APIGW.0301")
    assert body["error_msg"].startswith("Incorrect IAM authentication information")
    assert body["request_id"] == forged.headers["X-Request-Id"]


def test_signature_covers_body_and_query(demo_emulator: RunningEmulator) -> None:
    """A body changed after signing is refused: the emulator rebuilds the canonical request."""
    from reconciler.api import signing

    emu = demo_emulator
    path = emu.assets_path(AVATAR_ID)
    headers = {
        "Content-Type": "application/json",
        "Host": emu.base_url.split("://")[1],
        "X-Project-Id": emu.project_id,
        "X-Sdk-Date": signing.sdk_date(),
    }
    headers["Authorization"] = signing.authorization(
        emu.ak, emu.sk, "PUT", path, [], headers, b'{"asset_name": "a"}'
    )
    tampered = emu.request("PUT", path, sign=False, headers=headers, content=b'{"asset_name": "b"}')
    assert _error(tampered) == (401, "APIGW.0301")
    assert emu.store.get(AVATAR_ID)["asset_name"] == "Sara Model"  # type: ignore[index]


def test_clock_skew_beyond_15_minutes_is_refused(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    now = datetime.now(UTC)
    ok = emu.request("GET", emu.assets_path(AVATAR_ID), date=now - timedelta(minutes=14))
    assert ok.status_code == 200
    late = emu.request("GET", emu.assets_path(AVATAR_ID), date=now - timedelta(minutes=16))
    assert _error(late) == (401, "APIGW.0301")
    assert "15 minutes" in late.json()["error_msg"]


def test_token_auth(emulator: EmulatorFactory) -> None:
    emu = emulator(demo_assets("p-test"), token="iam-token-value")
    path = emu.assets_path(AVATAR_ID)
    good = emu.request("GET", path, sign=False, headers={"X-Auth-Token": "iam-token-value"})
    assert good.status_code == 200
    bad = emu.request("GET", path, sign=False, headers={"X-Auth-Token": "another-token"})
    assert _error(bad) == (401, "APIGW.0301")
    assert "another-token" not in bad.text


def test_security_token_required_when_configured(emulator: EmulatorFactory) -> None:
    emu = emulator(demo_assets("p-test"), security_token="sts-token")
    path = emu.assets_path(AVATAR_ID)
    assert _error(emu.request("GET", path)) == (401, "APIGW.0301")
    ok = emu.request("GET", path, headers={"X-Security-Token": "sts-token"})
    assert ok.status_code == 200


# --- update -------------------------------------------------------------------------------------


def test_update_replaces_sent_fields_and_moves_update_time(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    before = emu.store.get(AVATAR_ID)
    assert before is not None
    response = emu.request(
        "PUT", emu.assets_path(AVATAR_ID), json_body={"asset_name": "Sara", "tags": ["NEWS"]}
    )
    assert response.status_code == 200
    after = response.json()
    assert after["asset_name"] == "Sara" and after["tags"] == ["NEWS"]
    assert after["asset_description"] == before["asset_description"]  # not sent: kept
    assert after["update_time"] > before["update_time"]
    assert after["update_time"].endswith("Z")
    assert emu.request("GET", emu.assets_path(AVATAR_ID)).json() == after


def test_update_with_no_real_change_keeps_update_time(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    before = emu.store.get(AVATAR_ID)
    assert before is not None
    same = {"asset_name": before["asset_name"], "asset_order": before["asset_order"]}
    after = emu.request("PUT", emu.assets_path(AVATAR_ID), json_body=same).json()
    assert after["update_time"] == before["update_time"]
    empty = emu.request("PUT", emu.assets_path(AVATAR_ID), json_body={}).json()
    assert empty == before


def test_two_quick_changes_both_move_update_time(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    first = emu.request("PUT", emu.assets_path(IMAGE_ID), json_body={"asset_name": "a"}).json()
    second = emu.request("PUT", emu.assets_path(IMAGE_ID), json_body={"asset_name": "b"}).json()
    assert second["update_time"] > first["update_time"]


def test_nested_block_is_replaced_whole_and_other_blocks_kept(emulator: EmulatorFactory) -> None:
    seed = demo_assets("p-test")
    avatar = next(a for a in seed if a["asset_id"] == AVATAR_ID)
    avatar["asset_extra_meta"]["material_meta"] = {"components": []}  # another block: kept
    emu = emulator(seed)
    body = {"asset_extra_meta": {"human_model_2d_meta": {"support_live": True}}}
    after = emu.request("PUT", emu.assets_path(AVATAR_ID), json_body=body).json()
    assert after["asset_extra_meta"]["human_model_2d_meta"] == {"support_live": True}
    assert after["asset_extra_meta"]["material_meta"] == {"components": []}


def test_read_only_fields_are_ignored_and_logged(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    before = emu.store.get(VOICE_ID)
    assert before is not None
    body = {
        "asset_extra_meta": {
            "voice_model_meta": {"speed_ratio": 1.5, "voice_capability": {"is_support_srt": True}},
            "image_meta": {"width": 10},
        }
    }
    after = emu.request("PUT", emu.assets_path(VOICE_ID), json_body=body).json()
    meta = after["asset_extra_meta"]
    assert meta["voice_model_meta"]["speed_ratio"] == 1.5
    assert (
        meta["voice_model_meta"]["voice_capability"]
        == (before["asset_extra_meta"]["voice_model_meta"]["voice_capability"])
    )
    assert "image_meta" not in meta
    logged = emu.requests()[-1]["ignored"]
    assert any("voice_capability" in item for item in logged)
    assert any("image_meta" in item for item in logged)


def test_write_only_fields_are_stored_but_never_returned(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    body = {"review_config": {"no_need_review": True}, "shared_config": {"shared_type": "PRIVATE"}}
    before = emu.store.get(PPT_ID)
    assert before is not None
    after = emu.request("PUT", emu.assets_path(PPT_ID), json_body=body).json()
    assert "review_config" not in after and "shared_config" not in after
    assert after["update_time"] > before["update_time"]  # a change reached the service
    listed = emu.request("GET", emu.assets_path(), params=[("asset_id", PPT_ID)]).json()
    assert "review_config" not in listed["assets"][0]
    assert emu.store.get_write_only(PPT_ID) == body


def test_system_properties_add_and_delete_by_key(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    ops = [
        {"action": "DELETE", "key": "MATERIAL_IMG"},
        {"action": "ADD", "key": "BACKGROUND_SCENE", "value": "Vertical"},
        {"action": "ADD", "key": "LIVE_IS_AUTHORIZED", "value": "YES"},
    ]
    after = emu.request("PUT", emu.assets_path(AVATAR_ID), json_body={"system_properties": ops})
    props = {p["key"]: p["value"] for p in after.json()["system_properties"]}
    assert props == {"BACKGROUND_SCENE": "Vertical", "LIVE_IS_AUTHORIZED": "YES"}


def test_asset_state_only_actived_or_unactived(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    ok = emu.request("PUT", emu.assets_path(AVATAR_ID), json_body={"asset_state": "ACTIVED"})
    assert ok.json()["asset_state"] == "ACTIVED"
    bad = emu.request("PUT", emu.assets_path(AVATAR_ID), json_body={"asset_state": "DELETED"})
    assert _error(bad) == (400, "MSS.10000003")
    assert "asset_state" in bad.json()["error_msg"]


def test_assets_in_blocked_states_reject_updates(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    response = emu.request("PUT", emu.assets_path(BLOCKED_ID), json_body={"asset_name": "x"})
    assert _error(response) == (400, "MSS.10000003")
    assert "BLOCK" in response.json()["error_msg"]
    assert emu.store.get(BLOCKED_ID)["asset_name"] == "Blocked Upload"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"asset_name": "x" * 257}, "asset_name"),
        ({"tags": ["t"] * 51}, "tags"),
        ({"asset_order": 40000}, "asset_order"),
        ({"unknown_field": 1}, "unknown_field"),
        (
            {"asset_extra_meta": {"human_model_2d_meta": {"model_resolution": "8K"}}},
            "model_resolution",
        ),
        ({"asset_name": 5}, "asset_name"),
    ],
)
def test_update_validation_names_the_field(
    demo_emulator: RunningEmulator, body: dict[str, Any], field: str
) -> None:
    response = demo_emulator.request("PUT", demo_emulator.assets_path(AVATAR_ID), json_body=body)
    assert _error(response) == (400, "MSS.10000003")
    assert field in response.json()["error_msg"]


@pytest.mark.parametrize("content", [b"not json", b"", b"[1, 2]"])
def test_update_body_must_be_a_json_object(demo_emulator: RunningEmulator, content: bytes) -> None:
    response = demo_emulator.request("PUT", demo_emulator.assets_path(AVATAR_ID), content=content)
    assert _error(response) == (400, "MSS.10000002")


def test_mismatched_extra_meta_block_is_ignored(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    body = {"asset_extra_meta": {"ppt_meta": {"auto_analysis": False}}}
    after = emu.request("PUT", emu.assets_path(AVATAR_ID), json_body=body).json()
    assert "ppt_meta" not in after["asset_extra_meta"]
    assert any("ppt_meta" in item for item in emu.requests()[-1]["ignored"])


def test_tenant_cannot_turn_an_asset_into_an_avatar(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    response = emu.request(
        "PUT", emu.assets_path(IMAGE_ID), json_body={"asset_type": "HUMAN_MODEL_2D"}
    )
    assert _error(response) == (400, "MSS.10000003")


# --- behaviours the reference allows: summary rows, short answers, edits during an apply -------


def _avatar(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    asset = next(a for a in demo_assets("p-test") if a["asset_id"] == AVATAR_ID)
    asset["asset_extra_meta"]["human_model_2d_meta"].update(extra or {})
    return asset


def test_list_omit_serves_summary_rows_and_show_stays_whole(emulator: EmulatorFactory) -> None:
    emu = emulator([_avatar()], list_omit=["asset_extra_meta.human_model_2d_meta", "tags"])
    [row] = emu.request("GET", emu.assets_path()).json()["assets"]
    assert "tags" not in row and row["asset_extra_meta"] == {}
    shown = emu.request("GET", emu.assets_path(AVATAR_ID)).json()
    assert shown["tags"] and shown["asset_extra_meta"]["human_model_2d_meta"]


@pytest.mark.parametrize("answer", ["short", "stale"])
def test_put_answers_short_or_stale_but_stores_the_update(
    emulator: EmulatorFactory, answer: str
) -> None:
    emu = emulator([_avatar()], put_answer=answer)
    body = emu.request("PUT", emu.assets_path(AVATAR_ID), json_body={"asset_name": "New"}).json()
    if answer == "short":
        assert set(body) <= {
            "asset_id", "asset_name", "asset_description", "create_time", "asset_type",
            "asset_state", "files",
        }  # fmt: skip
        assert body["asset_name"] == "New" and "asset_extra_meta" not in body
    else:
        assert body["asset_name"] != "New" and "asset_extra_meta" in body
    stored = emu.store.get(AVATAR_ID)
    assert stored is not None and stored["asset_name"] == "New"


def test_edit_on_put_fires_once_after_the_trigger_is_stored(emulator: EmulatorFactory) -> None:
    emu = emulator([_avatar(), next(a for a in demo_assets("p-test") if a["asset_id"] == VOICE_ID)])
    emu.edit_on_put(
        VOICE_ID, {"asset_extra_meta.voice_model_meta.speed_ratio": 1.7}, after=AVATAR_ID
    )
    before = emu.store.get(VOICE_ID)
    emu.request("PUT", emu.assets_path(VOICE_ID), json_body={"asset_order": 2})  # not the trigger
    assert emu.store.get(VOICE_ID)["asset_extra_meta"] == before["asset_extra_meta"]  # type: ignore[index]
    emu.request("PUT", emu.assets_path(AVATAR_ID), json_body={"asset_name": "A"})
    edited = emu.store.get(VOICE_ID)
    assert edited is not None
    assert edited["asset_extra_meta"]["voice_model_meta"]["speed_ratio"] == 1.7
    assert edited["update_time"] > before["update_time"]  # type: ignore[index]
    assert [e.get("edited") for e in emu.requests() if e["method"] == "PUT"] == [None, [VOICE_ID]]
    emu.request("PUT", emu.assets_path(AVATAR_ID), json_body={"asset_name": "B"})
    assert emu.requests()[-1].get("edited") is None  # once


def test_block_fields_it_returns_are_accepted_back_others_refused(
    emulator: EmulatorFactory,
) -> None:
    emu = emulator([_avatar({"render_engine": "UE"})])
    block = dict(emu.store.get(AVATAR_ID)["asset_extra_meta"]["human_model_2d_meta"])  # type: ignore[index]
    sent = {"asset_extra_meta": {"human_model_2d_meta": {**block, "support_live": True}}}
    response = emu.request("PUT", emu.assets_path(AVATAR_ID), json_body=sent)
    assert response.status_code == 200, response.text
    stored = emu.store.get(AVATAR_ID)["asset_extra_meta"]["human_model_2d_meta"]  # type: ignore[index]
    assert stored["render_engine"] == "UE" and stored["support_live"] is True
    typo = {"asset_extra_meta": {"human_model_2d_meta": {"suport_live": True}}}
    assert _error(emu.request("PUT", emu.assets_path(AVATAR_ID), json_body=typo)) == (
        400,
        "MSS.10000003",
    )
