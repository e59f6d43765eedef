"""The list switches: assets deleted or created while the project is paged, a count that is off."""

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
from reconciler.emulator.config import (
    Behaviour,
    ListMutation,
    parse_create_on_list,
    parse_delete_on_list,
)
from reconciler.emulator.testing import EmulatorFactory, RunningEmulator
from reconciler.errors import ConfigError


def asset_id(n: int) -> str:
    return f"{n:08d}-0000-4000-8000-000000000000"


def assets(count: int) -> list[dict[str, Any]]:
    return [
        {"asset_id": asset_id(n), "asset_name": f"Clip {n}", "asset_type": "VIDEO"}
        for n in range(count)
    ]


def page(emu: RunningEmulator, offset: int, *ids: str) -> tuple[int, list[str]]:
    params = [("limit", "100"), ("offset", str(offset)), *(("asset_id", i) for i in ids)]
    body = emu.request("GET", emu.assets_path(), params=params).json()
    return body["count"], [row["asset_id"] for row in body["assets"]]


def test_a_deletion_on_a_page_shifts_an_asset_onto_the_page_already_read(
    emulator: EmulatorFactory,
) -> None:
    emu = emulator(assets(250))
    emu.mutate_on_list(100, delete=asset_id(5))
    _, first = page(emu, 0)
    count, second = page(emu, 100)
    _, third = page(emu, 200)
    assert count == 249 and emu.store.get(asset_id(5)) is None
    seen = set(first) | set(second) | set(third)
    assert asset_id(100) not in seen  # it moved to page 0 after page 0 was read
    assert seen == {asset_id(n) for n in range(250)} - {asset_id(100)}
    assert page(emu, 0, asset_id(100)) == (1, [asset_id(100)])  # by id it is there


def test_a_creation_sorted_first_shows_an_asset_twice_and_the_new_one_on_no_page(
    emulator: EmulatorFactory,
) -> None:
    emu = emulator(assets(150))
    new = {"asset_id": "new-asset", "asset_type": "IMAGE", "create_time": "2000-01-01T00:00:00Z"}
    emu.mutate_on_list(100, create=new)
    _, first = page(emu, 0)
    count, second = page(emu, 100)
    assert count == 151
    assert second[0] == first[-1] == asset_id(99)
    assert "new-asset" not in first + second
    assert emu.store.get("new-asset") is not None


def test_a_mutation_fires_once_and_only_for_a_page_of_the_whole_project(
    emulator: EmulatorFactory,
) -> None:
    emu = emulator(assets(3))
    emu.mutate_on_list(0, delete=asset_id(0))
    assert page(emu, 0, asset_id(1)) == (1, [asset_id(1)])  # a read by ids: nothing fires
    assert emu.store.get(asset_id(0)) is not None
    assert page(emu, 0)[0] == 2  # the project's first page: deleted before it is read
    emu.store.seed(assets(1), emu.project_id)
    assert page(emu, 0)[0] == 3  # once only
    assert emu.state.config.behaviour.list_mutations == []


@pytest.mark.parametrize(("offset", "count"), [(-150, 100), (-1000, 0), (7, 257)])
def test_the_count_is_off_by_the_offset_and_the_rows_are_not(
    emulator: EmulatorFactory, offset: int, count: int
) -> None:
    emu = emulator(assets(250))
    emu.set_count_offset(offset)
    assert page(emu, 0) == (count, [asset_id(n) for n in range(100)])
    assert len(page(emu, 200)[1]) == 50


def test_set_behaviour_keeps_the_list_switches(emulator: EmulatorFactory) -> None:
    emu = emulator(assets(2))
    emu.set_count_offset(-1)
    emu.mutate_on_list(100, delete=asset_id(1))
    emu.set_behaviour(put_answer="short")
    assert emu.state.config.behaviour.count_offset == -1
    assert emu.state.config.behaviour.list_mutations == [ListMutation(100, asset_id(1))]


def test_parsing_the_serve_options() -> None:
    assert parse_delete_on_list("100:a1") == ListMutation(100, delete="a1")
    created = parse_create_on_list('0:{"asset_id": "b", "asset_type": "IMAGE"}')
    assert created == ListMutation(0, create={"asset_id": "b", "asset_type": "IMAGE"})
    assert Behaviour(count_offset=-3).count_offset == -3


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_delete_on_list, "a1", "expected OFFSET:ASSET_ID"),
        (parse_delete_on_list, "-1:a1", "expected OFFSET:ASSET_ID"),
        (parse_delete_on_list, "100:", "expected OFFSET:ASSET_ID"),
        (parse_create_on_list, "0:{nope", "the record is not JSON"),
        (parse_create_on_list, "0:[1]", "must be a JSON object"),
        (parse_create_on_list, '0:{"asset_name": "x"}', "needs an asset_id string"),
    ],
)
def test_malformed_serve_options_are_clear_errors(parse: Any, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(text)


@pytest.mark.e2e
def test_serve_options_shift_the_pages_and_the_count(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("".join(f"- {{asset_id: a{n}, asset_type: IMAGE}}\n" for n in range(5)))
    ready = tmp_path / "ready"
    env = {**os.environ, "HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SK": "sk-value"}
    args = [sys.executable, "-m", "reconciler", "emulator", "serve", "--project-id", "p"]
    args += ["--port", "0", "--seed", str(seed), "--ready-file", str(ready)]
    args += ["--rate-limits", "list=0", "--count-offset", "-3", "--delete-on-list", "2:a0"]
    args += ["--create-on-list", '4:{"asset_id": "z9", "asset_type": "IMAGE"}']
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text().strip()):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        base_url = ready.read_text().strip()

        def listed(offset: int) -> dict[str, Any]:
            params = [("limit", "2"), ("offset", str(offset))]
            path = "/v1/p/digital-assets"
            headers = {"Host": base_url.split("://", 1)[1], signing.DATE_HEADER: signing.sdk_date()}
            headers["Authorization"] = signing.authorization(
                "ak", "sk-value", "GET", path, params, headers, b""
            )
            url = f"{base_url}{path}?{signing.canonical_query(params)}"
            answer: dict[str, Any] = httpx.get(url, headers=headers).json()
            return answer

        first, second, third = listed(0), listed(2), listed(4)
        assert [r["asset_id"] for r in first["assets"]] == ["a0", "a1"]
        assert [r["asset_id"] for r in second["assets"]] == ["a3", "a4"]  # a0 went first: a2 lost
        assert [r["asset_id"] for r in third["assets"]] == ["z9"]
        assert (first["count"], second["count"], third["count"]) == (2, 1, 2)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
