"""The client against the real emulator over loopback sockets: bulk reads, retries, pacing, auth."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.api.auth import Credentials
from reconciler.api.client import LiveAsset, MetaStudioClient, RetryPolicy
from reconciler.api.config import RateLimits, Target
from reconciler.api.errors import AssetNotFound, CredentialsRejected, ServiceUnreachable
from reconciler.emulator.config import DEFAULT_RATE_LIMITS
from reconciler.emulator.store import generate_assets
from reconciler.emulator.testing import RunningEmulator, run_emulator

pytestmark = pytest.mark.e2e

UNPACED = RateLimits(list=0, show=0, update=0)
FAST_RETRY = RetryPolicy(max_retries=5, backoff_base=0.01, backoff_cap=0.05, total_time=30)
ASSETS = generate_assets(1000, seed=7, project_id="p-test")
IDS = [a["asset_id"] for a in ASSETS]


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with run_emulator(ASSETS, security_token="st-secret-value") as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(emu: RunningEmulator) -> Iterator[None]:
    emu.clear_requests()
    yield
    emu.set_faults(fail_rate=0.0, drop_rate=0.0)
    emu.set_rate_limits(None)


def target(emu: RunningEmulator, limits: RateLimits = UNPACED) -> Target:
    return Target(
        name="emu",
        region=None,
        project_id=emu.project_id,
        endpoint=emu.base_url,
        rate_limits=limits,
        timeout=10,
    )


def creds(emu: RunningEmulator, **overrides: Any) -> Credentials:
    values: dict[str, Any] = {"ak": emu.ak, "sk": emu.sk, "security_token": emu.security_token}
    values.update(overrides)
    return Credentials(**values)


def logged(emu: RunningEmulator) -> list[dict[str, Any]]:
    """The request log once it has settled (the emulator writes an entry after responding)."""
    entries = emu.requests()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.05)
        again = emu.requests()
        if len(again) == len(entries):
            break
        entries = again
    return entries


def list_requests(emu: RunningEmulator) -> list[dict[str, Any]]:
    path = f"/v1/{emu.project_id}/digital-assets"
    return [r for r in logged(emu) if r["method"] == "GET" and r["path"] == path]


async def test_fetch_1000_assets_takes_ten_list_requests(emu: RunningEmulator) -> None:
    wanted = [*IDS, "00000000-0000-4000-8000-000000000000"]  # one that does not exist
    async with MetaStudioClient(target(emu), creds(emu)) as client:
        live = await client.fetch(wanted)
    assert set(live) == set(IDS)
    assert live[IDS[5]].info.asset_name == ASSETS[5]["asset_name"]
    assert live[IDS[5]].raw["asset_id"] == IDS[5]
    assert live[IDS[5]].request_id
    sent = list_requests(emu)
    assert len(sent) == 11  # ceil(1001 / 100)
    assert len(logged(emu)) == 11  # and nothing else: no GET per asset
    assert all(r["status"] == 200 for r in sent)
    assert sum(1 for r in sent for key, _ in r["query"] if key == "asset_id") == 1001


async def test_list_all_pages_through_everything(emu: RunningEmulator) -> None:
    async with MetaStudioClient(target(emu), creds(emu)) as client:
        every = await client.list_all()
    assert sorted(a.asset_id for a in every) == sorted(IDS)
    offsets = sorted(int(v) for r in list_requests(emu) for k, v in r["query"] if k == "offset")
    # 1,000 rows fill ten pages: one more page (empty) shows that the count was not low
    assert offsets == list(range(0, 1100, 100))


async def test_fetch_survives_twenty_percent_failures(emu: RunningEmulator) -> None:
    emu.set_faults(fail_rate=0.1, drop_rate=0.1)
    async with MetaStudioClient(target(emu), creds(emu), retry=FAST_RETRY) as client:
        live = await client.fetch(IDS)
        every = await client.list_all()
    assert set(live) == set(IDS)
    assert len(every) == 1000
    statuses = [r.get("status") for r in logged(emu)]
    assert 500 in statuses or any(r.get("dropped") for r in logged(emu))


async def test_throttling_is_retried_after_retry_after(emu: RunningEmulator) -> None:
    emu.set_rate_limits({"list": 1})
    waits: list[float] = []
    async with MetaStudioClient(target(emu), creds(emu)) as client:
        real_sleep = client._sleep

        async def observed(delay: float) -> None:
            waits.append(delay)
            await real_sleep(delay)

        client._sleep = observed
        live = await client.fetch(IDS[:300])
    assert len(live) == 300
    throttled = [r for r in logged(emu) if r["status"] == 429]
    assert throttled and all(r["error_code"] == "APIG.0308" for r in throttled)
    assert waits and all(w >= 1.0 for w in waits)  # Retry-After said at least 1 second


async def test_default_pacing_causes_no_throttling(emu: RunningEmulator) -> None:
    emu.set_rate_limits(DEFAULT_RATE_LIMITS)
    limits = RateLimits(**DEFAULT_RATE_LIMITS)
    async with MetaStudioClient(target(emu, limits), creds(emu), parallelism=16) as client:
        await client.fetch(IDS)
        await client.list_all()
        for asset_id in IDS[:12]:
            await client.update(asset_id, {"tags": ["PACED"]})
    statuses = [r["status"] for r in logged(emu)]
    assert len(statuses) == 33  # 10 by ids, 11 pages (the last one empty), 12 updates
    assert 429 not in statuses


async def test_update_sends_exact_body_and_returns_new_state(emu: RunningEmulator) -> None:
    asset_id = IDS[1]
    async with MetaStudioClient(target(emu), creds(emu)) as client:
        updated = await client.update(asset_id, {"asset_description": "über new"}, "partner-1")
        shown = await client.show(asset_id)
    assert isinstance(updated, LiveAsset)
    assert updated.info.asset_description == "über new"
    assert shown.raw["asset_description"] == "über new"
    put = next(r for r in logged(emu) if r["method"] == "PUT")
    assert put["body"] == {"asset_description": "über new"}
    assert put["headers"]["x-app-userid"] == "partner-1"
    assert put["headers"]["content-type"] == "application/json"
    assert put["headers"]["user-agent"].startswith("reconciler/")


async def test_fetch_groups_by_app_user_id(emu: RunningEmulator) -> None:
    users = {IDS[0]: "u-1", IDS[1]: "u-1", IDS[2]: None}
    async with MetaStudioClient(target(emu), creds(emu)) as client:
        await client.fetch(IDS[:3], users)
    headers = sorted(str(r["headers"].get("x-app-userid")) for r in list_requests(emu))
    assert headers == ["None", "u-1"]


async def test_unknown_asset_is_asset_not_found(emu: RunningEmulator) -> None:
    async with MetaStudioClient(target(emu), creds(emu)) as client:
        with pytest.raises(AssetNotFound) as info:
            await client.show("no-such-asset")
    assert info.value.status == 400
    assert info.value.error_code == "MSS.10001001"
    assert str(info.value).startswith(
        f"GET /v1/{emu.project_id}/digital-assets/no-such-asset failed: 400 MSS.10001001"
    )
    assert info.value.request_id and info.value.request_id in str(info.value)


async def test_token_auth(emu: RunningEmulator) -> None:
    with run_emulator(ASSETS[:3], token="iam-token-abcdef", ak=None, sk=None) as tok:  # type: ignore[arg-type]
        async with MetaStudioClient(target(tok), Credentials(token="iam-token-abcdef")) as client:
            live = await client.fetch(IDS[:3])
        assert set(live) == set(IDS[:3])
        assert logged(tok)[0]["headers"]["x-auth-token"] == "***"


async def test_wrong_sk_is_rejected_once_and_secrets_stay_out(
    emu: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    bad = creds(emu, sk="wrong-secret-key")
    with caplog.at_level(logging.DEBUG, logger="reconciler"):
        async with MetaStudioClient(target(emu), bad, retry=FAST_RETRY) as client:
            with pytest.raises(CredentialsRejected) as info:
                await client.fetch(IDS[:5])
    assert info.value.status == 401
    assert len(logged(emu)) == 1  # not retried
    message = str(info.value)
    assert "\n" not in message and "HUAWEICLOUD_SDK_AK" in message
    text = caplog.text + message + repr(client) + repr(bad)
    assert caplog.records  # debug logging did happen
    for secret in ("wrong-secret-key", emu.sk, emu.ak, "st-secret-value", "Signature="):
        assert secret not in text


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_service_down_is_unreachable_with_clear_message() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    down = Target(name="down", region=None, project_id="p", endpoint=endpoint, rate_limits=UNPACED)
    policy = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.02)
    async with MetaStudioClient(
        down, Credentials(ak="ak-1234", sk="sk-5678"), retry=policy
    ) as client:
        with pytest.raises(ServiceUnreachable) as info:
            await client.fetch(["a"])
    message = str(info.value)
    assert endpoint in message
    assert "after 3 attempts" in message
    assert "check the region or --endpoint" in message
    assert "sk-5678" not in message
