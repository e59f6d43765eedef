"""Listing by ``update_time``: milliseconds whatever precision a record was seeded with, ties in
a stable order, every write moving an asset to the top, and the switch that ignores sort_key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.api import signing
from reconciler.emulator.testing import EmulatorFactory, RunningEmulator


def record(asset_id: str, created: str, updated: str) -> dict[str, Any]:
    return {
        "asset_id": asset_id,
        "asset_name": f"Clip {asset_id}",
        "asset_type": "VIDEO",
        "create_time": created,
        "update_time": updated,
    }


def newest_first(emu: RunningEmulator, key: str = "update_time") -> list[str]:
    params = [("limit", "100"), ("offset", "0"), ("sort_dir", "desc"), ("sort_key", key)]
    answer = emu.request("GET", emu.assets_path(), params=params)
    assert answer.status_code == 200
    return [row["asset_id"] for row in answer.json()["assets"]]


SEEDED = [
    record("a", "2024-01-01T00:00:00Z", "2024-03-02T09:30:00.500Z"),
    record("b", "2024-01-02T00:00:00Z", "2024-03-02T09:30:00Z"),  # second precision, earlier
    record("c", "2024-01-03T00:00:00Z", "2024-03-02T09:30:00.500Z"),  # the same ms as a
    record("d", "2024-01-04T00:00:00Z", "2024-03-01T00:00:00.000Z"),
]


def test_update_time_sorts_by_the_instant_with_ties_in_a_stable_order(
    emulator: EmulatorFactory,
) -> None:
    emu = emulator(SEEDED)
    # 09:30:00Z is before 09:30:00.500Z although it sorts after it as text; a and c share a
    # millisecond: the later created first, the same on every read.
    assert newest_first(emu) == ["c", "a", "b", "d"]
    assert newest_first(emu) == ["c", "a", "b", "d"]
    params = [("limit", "100"), ("sort_dir", "asc"), ("sort_key", "update_time")]
    ascending = emu.request("GET", emu.assets_path(), params=params).json()["assets"]
    assert [row["asset_id"] for row in ascending] == ["d", "b", "a", "c"]


def test_every_write_moves_the_asset_to_the_top(emulator: EmulatorFactory) -> None:
    emu = emulator(SEEDED)
    emu.store.patch("d", {"asset_name": "Edited in the console"})
    assert newest_first(emu)[0] == "d"
    answer = emu.request("PUT", emu.assets_path("b"), json_body={"asset_name": "Written"})
    assert answer.status_code == 200
    assert newest_first(emu)[:2] == ["b", "d"]
    edited = emu.store.get("b")
    assert edited is not None and edited["update_time"] > "2024-03-02T09:30:00.500Z"


def test_the_switch_ignores_sort_key_but_not_sort_dir(emulator: EmulatorFactory) -> None:
    emu = emulator(SEEDED)
    emu.set_behaviour(ignore_sort_key=True)
    assert newest_first(emu) == ["d", "c", "b", "a"]  # by create_time, descending
    emu.set_behaviour(ignore_sort_key=False)
    assert newest_first(emu) == ["c", "a", "b", "d"]


def test_set_update_time_stamps_an_asset_at_a_chosen_instant(emulator: EmulatorFactory) -> None:
    emu = emulator(SEEDED)
    emu.set_update_time("d", "2024-03-02T09:30:00.500Z")
    assert newest_first(emu) == ["d", "c", "a", "b"]
    with pytest.raises(KeyError):
        emu.set_update_time("nope", "2024-03-02T09:30:00.500Z")


@pytest.mark.e2e
def test_serve_ignore_sort_key(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "- {asset_id: old, asset_type: IMAGE, create_time: '2024-01-01T00:00:00Z', "
        "update_time: '2024-05-01T00:00:00Z'}\n"
        "- {asset_id: new, asset_type: IMAGE, create_time: '2024-02-01T00:00:00Z', "
        "update_time: '2024-03-01T00:00:00Z'}\n"
    )
    ready = tmp_path / "ready"
    env = {**os.environ, "HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SK": "sk-value"}
    args = [sys.executable, "-m", "reconciler", "emulator", "serve", "--project-id", "p"]
    args += ["--port", "0", "--seed", str(seed), "--ready-file", str(ready)]
    args += ["--rate-limits", "list=0", "--ignore-sort-key"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text().strip()):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        base_url = ready.read_text().strip()
        params = [("sort_dir", "desc"), ("sort_key", "update_time")]
        path = "/v1/p/digital-assets"
        headers = {"Host": base_url.split("://", 1)[1], signing.DATE_HEADER: signing.sdk_date()}
        headers["Authorization"] = signing.authorization(
            "ak", "sk-value", "GET", path, params, headers, b""
        )
        url = f"{base_url}{path}?{signing.canonical_query(params)}"
        rows = httpx.get(url, headers=headers).json()["assets"]
        assert [r["asset_id"] for r in rows] == ["new", "old"]  # create_time, not update_time
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
