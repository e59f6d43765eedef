"""``reconciler plan`` end to end: the real CLI as a subprocess against the emulator on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_process import clean_env
from conftest import EmulatorFactory

from reconciler.emulator.testing import RunningEmulator
from reconciler.engine.plan import PlanSet
from reconciler.run.planfile import read_plan

pytestmark = pytest.mark.e2e

AVATAR = "93769b5a-c8c6-4692-9c95-53933a1f0c93"
VOICE = "0b5c1e4a-7f3d-4c2a-9e61-2a7d5b8c9f10"
MISSING = "deadbeef-0000-4000-8000-000000000000"


def _live() -> list[dict[str, Any]]:
    return [
        {
            "asset_id": AVATAR,
            "asset_name": "Sara Model",
            "asset_description": "Virtual employee",
            "asset_type": "HUMAN_MODEL_2D",
            "asset_state": "ACTIVED",
            "create_time": "2024-03-05T10:15:00Z",
            "update_time": "2024-03-06T11:00:00Z",
            "tags": ["NEWS", "FEMALE", "HALF-BODY"],
            "asset_extra_meta": {
                "human_model_2d_meta": {"support_live": False, "model_resolution": "1080P"}
            },
        },
        {
            "asset_id": VOICE,
            "asset_name": "Lin Narrator",
            "asset_type": "VOICE_MODEL",
            "asset_state": "ACTIVED",
            "create_time": "2024-03-01T08:00:00Z",
            "update_time": "2024-03-02T09:30:00Z",
            "tags": ["FEMALE"],
        },
    ]


def _manifest(asset_id: str, spec: str, labels: str = "", target: str = "") -> str:
    meta = f"  asset_id: {asset_id}\n"
    if labels:
        meta += f"  labels: {labels}\n"
    if target:
        meta += f"  target: {target}\n"
    body = "".join(f"  {line}\n" for line in spec.strip().splitlines())
    return (
        f"apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\nmetadata:\n{meta}spec:\n{body}"
    )


@pytest.fixture
def live(emulator: EmulatorFactory) -> RunningEmulator:
    return emulator(_live())


def _write(tmp_path: Path, *documents: str) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "assets.yaml").write_text("---\n".join(documents))
    return folder


def _run(
    emu: RunningEmulator, cwd: Path, *args: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.update(emu.env())
    command = [sys.executable, "-m", "reconciler", "--endpoint", emu.base_url, *options, "plan"]
    command += args
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def _in_sync(tags: str = "[FEMALE, NEWS, HALF-BODY]") -> str:
    return _manifest(AVATAR, f"asset_name: Sara Model\ntags: {tags}")


def test_reordered_tags_are_no_change(live: RunningEmulator, tmp_path: Path) -> None:
    _write(tmp_path, _in_sync(), _manifest(VOICE, "tags: [FEMALE]"))
    result = _run(live, tmp_path, "--detailed-exitcode")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "No changes. Live assets match the manifests.\n"
    assert "Traceback" not in result.stderr
    assert not [r for r in live.requests() if r.get("method") == "PUT"]


def test_changed_asset_exits_2_with_the_body(live: RunningEmulator, tmp_path: Path) -> None:
    avatar = _manifest(
        AVATAR,
        "asset_name: Sara Model\ntags: [NEWS, FEMALE, HALF-BODY]\n"
        "asset_extra_meta:\n  human_model_2d_meta: {support_live: true}",
    )
    _write(tmp_path, avatar, _manifest(VOICE, "asset_description: Calm voice"))
    result = _run(live, tmp_path, "--format", "json", "--detailed-exitcode")
    assert result.returncode == 2, result.stderr
    data = json.loads(result.stdout)
    assert data["summary"] == {
        "to_change": 2,
        "unchanged": 0,
        "errors": 0,
        "blocked": 0,
        "ignored_fields": 0,
        "violations": 0,
        "failed_targets": 0,
    }
    (target,) = data["targets"]
    by_id = {a["asset_id"]: a for a in target["assets"]}
    assert by_id[VOICE]["body"] == {"asset_description": "Calm voice"}
    sent = by_id[AVATAR]["body"]["asset_extra_meta"]["human_model_2d_meta"]
    assert sent == {"support_live": True, "model_resolution": "1080P"}  # sent whole, live filled
    assert target["project_id"] == live.project_id

    text = _run(live, tmp_path)
    assert text.returncode == 0
    assert f'# asset "Lin Narrator" ({VOICE}) will be updated in-place' in text.stdout
    assert '+ asset_description = "Calm voice"' in text.stdout
    assert "~ support_live = false -> true" in text.stdout
    assert "\x1b[" not in text.stdout  # not a terminal: no colour
    assert text.stdout.rstrip().endswith("Plan: 2 to change, 0 unchanged.")


def test_missing_asset_is_an_error_row_and_the_rest_are_planned(
    live: RunningEmulator, tmp_path: Path
) -> None:
    _write(
        tmp_path,
        _manifest(MISSING, "asset_name: Ghost"),
        _manifest(VOICE, "asset_description: Calm voice"),
    )
    result = _run(live, tmp_path, "--detailed-exitcode")
    assert result.returncode == 1
    assert f'# asset "Ghost" ({MISSING}) cannot be planned' in result.stdout
    assert "MSS.10001001" in result.stdout
    assert f"({VOICE}) will be updated in-place" in result.stdout
    assert "Plan: 1 to change, 0 unchanged, 1 error." in result.stdout
    assert "1 asset could not be planned" in result.stderr
    assert "Traceback" not in result.stderr


def test_out_writes_a_plan_file_that_round_trips(live: RunningEmulator, tmp_path: Path) -> None:
    _write(tmp_path, _in_sync(), _manifest(VOICE, "asset_description: Calm voice"))
    out = tmp_path / "plans" / "plan.json"
    result = _run(live, tmp_path, "--format", "json", "--out", str(out))
    assert result.returncode == 0, result.stderr
    saved = read_plan(out)
    assert saved.plan == PlanSet.from_json(json.loads(result.stdout))
    assert saved.plan.plans[0].endpoint == live.base_url
    assert saved.plan.plans[0].project_id == live.project_id
    assert {a.asset_id for a in saved.plan.assets} == {VOICE, AVATAR}
    content = out.read_text()
    assert live.sk not in content and live.ak not in content


def test_filters(live: RunningEmulator, tmp_path: Path) -> None:
    _write(
        tmp_path,
        _manifest(AVATAR, "asset_description: New text", labels="{team: video}"),
        _manifest(VOICE, "asset_description: Calm voice", labels="{team: audio}"),
    )
    by_asset = json.loads(_run(live, tmp_path, "--format", "json", "--asset", VOICE).stdout)
    assert [a["asset_id"] for a in by_asset["targets"][0]["assets"]] == [VOICE]
    by_label = json.loads(
        _run(live, tmp_path, "--format", "json", "--selector", "team=video").stdout
    )
    assert [a["asset_id"] for a in by_label["targets"][0]["assets"]] == [AVATAR]
    both = _run(live, tmp_path, "--format", "json", "--selector", "team=video", "--asset", VOICE)
    assert [t["assets"] for t in json.loads(both.stdout)["targets"]] == [[]]
    unknown = _run(live, tmp_path, "--asset", "nope")
    assert unknown.returncode == 1
    assert "no manifest declares this asset" in unknown.stderr


def test_markdown_format(live: RunningEmulator, tmp_path: Path) -> None:
    _write(tmp_path, _manifest(VOICE, "asset_description: Calm | voice <b>"))
    result = _run(live, tmp_path, "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<!-- reconciler:plan target=default -->\n## reconciler plan\n")
    assert "<details>" in result.stdout and "<b>Lin Narrator</b>" in result.stdout


def test_invalid_manifest_exits_1_without_traceback(live: RunningEmulator, tmp_path: Path) -> None:
    _write(tmp_path, _manifest(VOICE, "asset_nmae: typo"))
    result = _run(live, tmp_path)
    assert result.returncode == 1
    assert "asset_nmae" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_output_is_accepted_as_another_spelling_of_out(
    live: RunningEmulator, tmp_path: Path
) -> None:
    _write(tmp_path, _in_sync())
    out = tmp_path / "plan.json"
    result = _run(live, tmp_path, "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert read_plan(out).plan.summary.unchanged == 1
