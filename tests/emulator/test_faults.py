"""Rate limits, injected faults, the request log and persistence of the running emulator."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from reconciler.emulator.demo_seed import AVATAR_ID, demo_assets
from reconciler.emulator.testing import EmulatorFactory, RunningEmulator, run_emulator


def test_burst_over_the_limit_gets_429_with_retry_after(emulator: EmulatorFactory) -> None:
    emu = emulator(demo_assets("p-test"), rate_limits={"list": 5, "update": 2})
    statuses = [emu.request("GET", emu.assets_path()).status_code for _ in range(12)]
    assert statuses.count(200) >= 5 and statuses.count(429) >= 1
    assert statuses[:5] == [200] * 5  # burst = rate
    throttled = emu.request("GET", emu.assets_path())
    assert throttled.status_code == 429
    body = throttled.json()
    assert body["error_code"] == "APIG.0308"
    assert "throttling threshold" in body["error_msg"] and "limit:5" in body["error_msg"]
    assert int(throttled.headers["Retry-After"]) >= 1
    # Limits are per API: show has no limit here and still answers.
    assert emu.request("GET", emu.assets_path(AVATAR_ID)).status_code == 200


def test_rate_limits_change_at_runtime(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    emu.set_rate_limits({"show": 1})
    codes = [emu.request("GET", emu.assets_path(AVATAR_ID)).status_code for _ in range(3)]
    assert codes[0] == 200 and 429 in codes
    emu.set_rate_limits(None)
    assert emu.request("GET", emu.assets_path(AVATAR_ID)).status_code == 200


def test_fail_rate_answers_500_with_an_error_body(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    emu.set_faults(fail_rate=1.0)
    response = emu.request("PUT", emu.assets_path(AVATAR_ID), json_body={"asset_name": "x"})
    assert response.status_code == 500
    assert response.json()["error_code"]
    assert emu.store.get(AVATAR_ID)["asset_name"] == "Sara Model"  # type: ignore[index]
    emu.set_faults(fail_rate=0.0)
    assert emu.request("GET", emu.assets_path(AVATAR_ID)).status_code == 200


def test_drop_rate_closes_the_connection_without_a_response(demo_emulator: RunningEmulator) -> None:
    emu = demo_emulator
    emu.set_faults(drop_rate=1.0)
    with pytest.raises(httpx.TransportError):
        httpx.get(emu.base_url + emu.assets_path(), timeout=5)
    emu.set_faults(drop_rate=0.0)
    assert emu.request("GET", emu.assets_path(AVATAR_ID)).status_code == 200
    dropped = [entry for entry in emu.requests() if entry.get("dropped")]
    assert len(dropped) == 1 and dropped[0]["status"] is None


def test_partial_fail_rate_fails_some_requests_only(emulator: EmulatorFactory) -> None:
    emu = emulator(demo_assets("p-test"), fail_rate=0.5, random_seed=7)
    codes = {emu.request("GET", emu.assets_path()).status_code for _ in range(30)}
    assert codes == {200, 500}


def test_latency_settings_are_validated(demo_emulator: RunningEmulator) -> None:
    from reconciler.errors import ReconcilerError

    with pytest.raises(ReconcilerError, match="fail-rate"):
        demo_emulator.set_faults(fail_rate=1.5)
    demo_emulator.set_faults(latency_ms=1, jitter_ms=1)
    assert demo_emulator.request("GET", demo_emulator.assets_path()).status_code == 200


def test_request_log_has_everything_but_secrets(tmp_path: Path) -> None:
    record = tmp_path / "log" / "requests.jsonl"
    with run_emulator(
        demo_assets("p-test"),
        sk="super-secret-sk",
        token="super-secret-token",
        security_token="super-secret-sts",
        record_path=record,
    ) as emu:
        emu.request(
            "PUT",
            emu.assets_path(AVATAR_ID),
            params=[("x", "1")],
            json_body={"asset_name": "Logged"},
            headers={"X-Security-Token": "super-secret-sts"},
        )
        emu.request(
            "GET",
            emu.assets_path(AVATAR_ID),
            sign=False,
            headers={"X-Auth-Token": "super-secret-token"},
        )
        entries = emu.requests()
    text = record.read_text()
    for secret in (
        "super-secret-sk",
        "super-secret-token",
        "super-secret-sts",
        "Signature=",
        "test-ak",
    ):
        assert secret not in text
    put, get = entries
    assert put["method"] == "PUT" and put["path"] == f"/v1/p-test/digital-assets/{AVATAR_ID}"
    assert put["query"] == [["x", "1"]]
    assert put["body"] == {"asset_name": "Logged"}
    assert put["status"] == 200 and get["status"] == 200
    assert put["headers"]["authorization"] == "***"
    assert put["headers"]["x-security-token"] == "***"
    assert get["headers"]["x-auth-token"] == "***"
    assert put["headers"]["x-project-id"] == "p-test"
    assert all(json.loads(line)["request_id"] for line in text.splitlines())


def test_request_log_request_id_matches_the_response(demo_emulator: RunningEmulator) -> None:
    response = demo_emulator.request("GET", demo_emulator.assets_path("missing"))
    entry = demo_emulator.requests()[-1]
    assert entry["request_id"] == response.headers["X-Request-Id"]
    assert entry["error_code"] == "MSS.10001001"


def test_file_database_persists_across_restart(tmp_path: Path) -> None:
    db = tmp_path / "emulator.sqlite"
    with run_emulator(demo_assets("p-test"), db_path=db) as emu:
        changed = emu.request(
            "PUT",
            emu.assets_path(AVATAR_ID),
            json_body={"asset_name": "Persisted", "review_config": {"no_need_review": True}},
        ).json()
    with run_emulator(db_path=db) as emu:
        shown = emu.request("GET", emu.assets_path(AVATAR_ID)).json()
        assert shown == changed
        assert emu.store.get_write_only(AVATAR_ID) == {"review_config": {"no_need_review": True}}
        assert emu.store.count() == 8


def test_out_of_band_patch_changes_live_state_and_update_time(
    demo_emulator: RunningEmulator,
) -> None:
    emu = demo_emulator
    before = emu.request("GET", emu.assets_path(AVATAR_ID)).json()
    emu.store.patch(AVATAR_ID, {"asset_description": "edited in the console"})
    after = emu.request("GET", emu.assets_path(AVATAR_ID)).json()
    assert after["asset_description"] == "edited in the console"
    assert after["update_time"] > before["update_time"]
    with pytest.raises(KeyError):
        emu.store.patch("missing", {"asset_name": "x"})
