"""The official Huawei Cloud SDK works against the emulator unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.emulator.demo_seed import AVATAR_ID, VOICE_ID
from reconciler.emulator.testing import RunningEmulator

pytestmark = pytest.mark.sdk

sdk_auth = pytest.importorskip("huaweicloudsdkcore.auth.credentials")
sdk_exceptions = pytest.importorskip("huaweicloudsdkcore.exceptions.exceptions")
metastudio = pytest.importorskip("huaweicloudsdkmetastudio.v1")


def _client(emu: RunningEmulator, sk: str) -> Any:
    credentials = sdk_auth.BasicCredentials(emu.ak, sk, emu.project_id)
    return (
        metastudio.MetaStudioClient.new_builder()
        .with_credentials(credentials)
        .with_endpoints([emu.base_url])
        .build()
    )


def test_sdk_list_show_update(demo_emulator: RunningEmulator) -> None:
    client = _client(demo_emulator, demo_emulator.sk)
    listed = client.list_assets(metastudio.ListAssetsRequest(asset_id=[AVATAR_ID, VOICE_ID]))
    assert listed.count == 2
    assert {asset.asset_id for asset in listed.assets} == {AVATAR_ID, VOICE_ID}

    shown = client.show_asset(metastudio.ShowAssetRequest(asset_id=AVATAR_ID))
    assert shown.asset_name == "Sara Model"
    assert shown.asset_extra_meta.human_model_2d_meta.model_version == "V3_2"

    body = metastudio.UpdateDigitalAssetRequestBody(asset_name="Sara", tags=["NEWS", "FEMALE"])
    request = metastudio.UpdateDigitalAssetRequest(asset_id=AVATAR_ID, body=body)
    updated = client.update_digital_asset(request)
    assert updated.asset_name == "Sara"
    assert demo_emulator.store.get(AVATAR_ID)["tags"] == ["NEWS", "FEMALE"]  # type: ignore[index]

    sent = [entry for entry in demo_emulator.requests() if entry["method"] == "PUT"]
    assert sent[0]["body"] == {"asset_name": "Sara", "tags": ["NEWS", "FEMALE"]}


def test_sdk_with_wrong_sk_gets_401(demo_emulator: RunningEmulator) -> None:
    client = _client(demo_emulator, "not-the-secret")
    with pytest.raises(sdk_exceptions.ClientRequestException) as caught:
        client.show_asset(metastudio.ShowAssetRequest(asset_id=AVATAR_ID))
    assert caught.value.status_code == 401
    assert caught.value.error_code == "APIGW.0301"
    assert caught.value.request_id  # taken from X-Request-Id


def test_sdk_sees_asset_not_found(demo_emulator: RunningEmulator) -> None:
    client = _client(demo_emulator, demo_emulator.sk)
    with pytest.raises(sdk_exceptions.ClientRequestException) as caught:
        client.show_asset(metastudio.ShowAssetRequest(asset_id="no-such-asset"))
    assert (caught.value.status_code, caught.value.error_code) == (400, "MSS.10001001")
