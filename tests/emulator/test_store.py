"""Storage, seed files, generated assets and configuration of the emulator (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.emulator.config import DEFAULT_RATE_LIMITS, EmulatorConfig, parse_rate_limits
from reconciler.emulator.demo_seed import MANAGED_IDS, demo_assets
from reconciler.emulator.errors import EmulatorError
from reconciler.emulator.store import AssetQuery, AssetStore, generate_assets, load_seed_file
from reconciler.errors import ReconcilerError


def test_generate_and_seed_ten_thousand_assets_of_every_type() -> None:
    assets = generate_assets(10_000, seed=3, project_id="p-bench")
    assert len({a["asset_id"] for a in assets}) == 10_000
    assert {a["asset_type"] for a in assets} >= {
        "HUMAN_MODEL_2D",
        "VOICE_MODEL",
        "IMAGE",
        "VIDEO",
        "PPT",
        "MATERIAL",
        "AUDIO",
        "MUSIC",
    }
    assert generate_assets(5, seed=3, project_id="p-bench") == assets[:5]  # deterministic
    store = AssetStore()
    assert store.seed(assets, "p-bench") == 10_000
    total, page = store.query(AssetQuery(asset_types=["PPT"], limit=100, offset=0))
    assert total == 1_000 and len(page) == 100


def test_demo_seed_has_the_managed_ids_and_three_unmanaged() -> None:
    assets = demo_assets("p-x")
    ids = [a["asset_id"] for a in assets]
    assert set(MANAGED_IDS) <= set(ids) and len(ids) == len(MANAGED_IDS) + 3
    assert all(a["project_id"] == "p-x" for a in assets)
    assets[0]["asset_name"] = "mutated"
    assert demo_assets()[0]["asset_name"] != "mutated"  # each call is a fresh copy


def test_seed_files_json_yaml_and_list_response(tmp_path: Path) -> None:
    records = demo_assets("p")[:2]
    as_json = tmp_path / "seed.json"
    as_json.write_text(json.dumps(records))
    as_yaml = tmp_path / "seed.yaml"
    as_yaml.write_text("- asset_id: a1\n  asset_name: One\n  tags: [NEWS]\n")
    wrapped = tmp_path / "list.json"
    wrapped.write_text(json.dumps({"count": 2, "assets": records}))
    assert load_seed_file(as_json) == records
    assert load_seed_file(as_yaml) == [{"asset_id": "a1", "asset_name": "One", "tags": ["NEWS"]}]
    assert load_seed_file(wrapped) == records


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", "{nope", "not valid JSON"),
        ("bad.yaml", "- [unclosed", "not valid YAML"),
        ("map.yaml", "a: 1\n", "list of DigitalAssetInfo"),
        ("noid.yaml", "- asset_name: x\n", "[0]: seed record has no asset_id"),
    ],
)
def test_bad_seed_files_are_clear_errors(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(EmulatorError, match=message.replace("[", r"\[")):
        load_seed_file(path)


def test_missing_seed_file(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="cannot read seed file"):
        load_seed_file(tmp_path / "absent.json")


def test_seed_fills_defaults_and_separates_write_only() -> None:
    store = AssetStore()
    store.seed([{"asset_id": "a", "review_config": {"no_need_review": True}}], "p1")
    asset = store.get("a")
    assert asset is not None
    assert asset["project_id"] == "p1" and asset["asset_state"] == "ACTIVED"
    assert asset["create_time"].endswith("Z") and "review_config" not in asset
    assert store.get_write_only("a") == {"review_config": {"no_need_review": True}}


def test_rate_limit_flag_parsing() -> None:
    assert parse_rate_limits("") == DEFAULT_RATE_LIMITS
    assert parse_rate_limits("list=5, update=0") == {"list": 5.0, "show": 20.0, "update": 0.0}
    for bad, message in (
        ("list", "NAME=RATE"),
        ("list=x", "not a number"),
        ("put=1", "unknown API"),
    ):
        with pytest.raises(ReconcilerError, match=message):
            parse_rate_limits(bad)


def test_config_reads_the_clients_environment() -> None:
    env = {
        "HW_ACCESS_KEY": "ak-fallback",
        "HUAWEICLOUD_SDK_SK": "sk-primary",
        "HW_SECRET_KEY": "sk-fallback",
        "HW_PROJECT_ID": "p-env",
        "HW_AUTH_TOKEN": "tok",
    }
    config = EmulatorConfig.from_env(env)
    assert (config.ak, config.sk, config.project_id, config.token) == (
        "ak-fallback",
        "sk-primary",
        "p-env",
        "tok",
    )
    assert "sk-primary" not in repr(config) and "tok" not in repr(config)
    assert EmulatorConfig.from_env(env, project_id="p-flag").project_id == "p-flag"
    with pytest.raises(ReconcilerError, match="credentials"):
        EmulatorConfig.from_env({"HW_PROJECT_ID": "p"})
