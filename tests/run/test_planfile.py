"""Saved plan files: write/read round trip, integrity and clear errors, no secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plan_samples import SARA, sample_plan

from reconciler.engine.plan import FORMAT_VERSION, Plan, PlanSet
from reconciler.run import planfile
from reconciler.run.planfile import PlanFileError, read_plan, write_plan

ENDPOINT = "https://metastudio.cn-north-4.myhuaweicloud.com"


def two_targets() -> PlanSet:
    staging = sample_plan()
    staging.target, staging.project_id = "staging", "p2"
    down = Plan([], target="sg", project_id="p3", error="cannot reach MetaStudio", unplanned=4)
    return PlanSet([sample_plan(), staging, down], created_at="2026-01-01T00:00:00Z")


def test_round_trip(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", sample_plan())
    saved = read_plan(path)
    assert saved.plan == PlanSet.of(sample_plan())
    assert saved.format_version == FORMAT_VERSION
    by_id = {a.asset_id: a for a in saved.plan.assets}
    assert by_id[SARA].live_fingerprint == "sha256:" + "a" * 64


def test_round_trip_of_several_targets_keeps_each_one(tmp_path: Path) -> None:
    saved = read_plan(write_plan(tmp_path / "plan.json", two_targets())).plan
    assert saved == two_targets()
    assert [p.project_id for p in saved.plans] == ["p1", "p2", "p3"]
    assert saved.failed[0].error == "cannot reach MetaStudio" and saved.failed[0].unplanned == 4


def test_file_is_the_json_plan_of_every_target(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", two_targets())
    data = json.loads(path.read_text())
    assert data["format_version"] == FORMAT_VERSION == "2.2"
    assert data["plan_file"]["kind"] == "reconciler-plan"
    assert [t["target"] for t in data["targets"]] == ["prod", "staging", "sg"]
    assert data["targets"][0]["endpoint"] == ENDPOINT
    assert data["summary"]["failed_targets"] == 1


def test_a_plan_file_of_the_previous_format_is_still_read(tmp_path: Path) -> None:
    """Format 1.x held one target's fields at the top level; such files stay applicable."""
    legacy = sample_plan().to_json()
    legacy.update(format_version="1.0", plan_file={"kind": "reconciler-plan"})
    legacy["plan_file"]["reconciler_version"] = "0.1.0"
    legacy["plan_file"]["checksum"] = planfile.digest(legacy)
    path = _write(tmp_path, json.dumps(legacy))
    saved = read_plan(path)
    assert saved.format_version == "1.0"
    assert saved.plan == PlanSet.of(sample_plan())
    assert saved.plan.plans[0].endpoint == ENDPOINT


def test_digest_ignores_key_order() -> None:
    assert planfile.digest({"a": 1, "b": [1, 2]}) == planfile.digest({"b": [1, 2], "a": 1})
    assert planfile.digest({"b": [2, 1]}) != planfile.digest({"b": [1, 2]})


def test_never_contains_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ak, sk, token = "AKEXAMPLE1234567890A", "SKexample/secret+value0123456789", "tok-abcdef-123456"
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", ak)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", sk)
    monkeypatch.setenv("HW_AUTH_TOKEN", token)
    path = write_plan(tmp_path / "plan.json", sample_plan())
    text = path.read_text()
    for secret in (ak, sk, token):
        assert secret not in text


def test_refuses_to_write_a_prefixed_target_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.api.auth import credentials_from_env

    secret = "PRODsecret/value+0123456789"
    credentials_from_env(
        {"PROD_HUAWEICLOUD_SDK_AK": "PRODAK0123", "PROD_HUAWEICLOUD_SDK_SK": secret}, "PROD_"
    )
    plan = sample_plan()
    plan.assets[0].body = {"asset_description": f"key {secret}"}
    with pytest.raises(PlanFileError, match="would contain a credential"):
        write_plan(tmp_path / "plan.json", plan)


def test_refuses_to_write_a_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = sample_plan()
    plan.assets[0].body = {"asset_description": "key SKexample/secret+value0123456789"}
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "SKexample/secret+value0123456789")
    with pytest.raises(PlanFileError, match="HUAWEICLOUD_SDK_SK"):
        write_plan(tmp_path / "plan.json", plan)
    assert not (tmp_path / "plan.json").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ("[1, 2]", "is not a reconciler plan file"),
        ('{"format_version": "1.0", "assets": []}', "is not a reconciler plan file"),
        ('{"terraform_version": "1.9.0", "resource_changes": []}', "is not a reconciler plan"),
    ],
)
def test_foreign_or_malformed_file(tmp_path: Path, content: str, message: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(PlanFileError, match=message) as info:
        read_plan(path)
    assert str(path) in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match=r"plan file .*nope\.json does not exist"):
        read_plan(tmp_path / "nope.json")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.bin"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PlanFileError, match="not a reconciler plan file"):
        read_plan(path)


def test_edited_file_is_refused(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", sample_plan())
    data = json.loads(path.read_text())
    data["targets"][0]["assets"][0]["body"]["asset_name"] = "Something else"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanFileError, match="modified after it was written"):
        read_plan(path)


def test_reformatting_keeps_it_valid(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", sample_plan())
    path.write_text(json.dumps(json.loads(path.read_text()), separators=(",", ":")))
    assert read_plan(path).plan == PlanSet.of(sample_plan())


def _rewrite(path: Path, mutate: object) -> None:
    data = json.loads(path.read_text())
    assert callable(mutate)
    mutate(data)
    data["plan_file"].pop("checksum")
    data["plan_file"]["checksum"] = planfile.digest(data)
    path.write_text(json.dumps(data))


def test_incompatible_major_version(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", sample_plan())
    _rewrite(path, lambda d: d.update(format_version="3.0"))
    with pytest.raises(PlanFileError, match=r"plan format 3\.0.*reads formats 2\.x and 1\.x"):
        read_plan(path)


def test_newer_minor_version_is_read(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", sample_plan())
    _rewrite(path, lambda d: d.update(format_version="2.7", new_field={"x": 1}))
    assert read_plan(path).format_version == "2.7"


def test_malformed_asset_entry(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", sample_plan())
    _rewrite(path, lambda d: d["targets"][0]["assets"][0].update(action="explode"))
    with pytest.raises(PlanFileError, match="malformed plan file"):
        read_plan(path)
    _rewrite(path, lambda d: d["targets"][0]["assets"][0].pop("asset_id"))
    with pytest.raises(PlanFileError, match="missing field 'asset_id'"):
        read_plan(path)


def test_a_credential_split_between_two_written_pieces_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is written piece by piece (a plan of 100,000 assets is never one string); the
    search for credentials looks across the boundary between pieces."""
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "SKexample/secret+value0123456789")
    pieces = iter(['{"a": "SKexample/sec', 'ret+value0123456789"}'])
    with pytest.raises(PlanFileError, match="HUAWEICLOUD_SDK_SK"):
        list(planfile._checked(pieces, tmp_path / "plan.json"))
