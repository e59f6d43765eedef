"""``reconciler drift`` end to end: the CLI against the emulator over a real socket."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from reconciler.emulator.testing import RunningEmulator, run_emulator

pytestmark = pytest.mark.e2e

SARA = "93769b5a-c8c6-4692-9c95-53933a1f0c93"
VOICE = "11111111-1111-4111-8111-111111111111"
IMAGE = "22222222-2222-4222-8222-222222222222"
LOOSE_1 = "33333333-3333-4333-8333-333333333333"
LOOSE_2 = "44444444-4444-4444-8444-444444444444"
GONE = "55555555-5555-4555-8555-555555555555"
FROZEN = "66666666-6666-4666-8666-666666666666"

LIVE: list[dict[str, Any]] = [
    {
        "asset_id": SARA,
        "asset_name": "Sara Model",
        "asset_description": "Virtual employee",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "tags": ["NEWS", "FEMALE"],
        "asset_extra_meta": {
            "human_model_2d_meta": {"support_live": True, "model_resolution": "1080P"}
        },
    },
    {
        "asset_id": VOICE,
        "asset_name": "Warm Voice",
        "asset_type": "VOICE_MODEL",
        "asset_state": "ACTIVED",
        "asset_extra_meta": {
            "voice_model_meta": {
                "languages": ["CN", "EN"],
                "speed_ratio": 1.0,
                "voice_capability": {"is_support_speed": True},
            }
        },
    },
    {
        "asset_id": IMAGE,
        "asset_name": "Studio Background",
        "asset_type": "IMAGE",
        "asset_state": "UNACTIVED",
        "system_properties": [{"key": "BACKGROUND_IMG", "value": "Yes"}],
        "asset_extra_meta": {"image_meta": {"codec": "png", "width": 1920}},
    },
    {"asset_id": LOOSE_1, "asset_name": "Unmanaged A", "asset_type": "VIDEO"},
    {"asset_id": LOOSE_2, "asset_name": "Unmanaged B", "asset_type": "AUDIO"},
]

MANIFESTS = f"""\
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: {SARA}
spec:
  asset_name: Sara Model
  asset_description: Virtual employee
  tags: [FEMALE, NEWS]
  asset_extra_meta:
    human_model_2d_meta: {{support_live: true}}
---
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: {VOICE}
spec:
  asset_name: Warm Voice
  review_config: {{no_need_review: true}}
  asset_extra_meta:
    voice_model_meta: {{languages: [EN, CN], speed_ratio: 1}}
---
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: {IMAGE}
spec:
  asset_state: UNACTIVED
  system_properties: {{BACKGROUND_IMG: "Yes"}}
"""

Run = Callable[..., Result]


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with run_emulator([dict(a) for a in LIVE]) as running:
        yield running


@pytest.fixture
def run(emu: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run the CLI in a fresh repository (``manifests/`` holds MANIFESTS) against ``emu``."""
    for name in ("HW_ACCESS_KEY", "HW_SECRET_KEY", "HW_AUTH_TOKEN", "HW_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "assets.yaml").write_text(MANIFESTS)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--no-color", *args], catch_exceptions=False)

    return invoke


def test_in_sync_project_exits_0_and_says_so(run: Run) -> None:
    result = run("drift")
    assert result.exit_code == 0, result.output
    assert "No drift. Live assets match the manifests." in result.output
    # Write-only fields are neither drift nor "in sync": they are called out as uncheckable.
    assert "review_config: write-only, cannot be checked" in result.output


def test_out_of_band_edit_shows_field_and_both_values_then_apply_clears_it(
    run: Run, emu: RunningEmulator
) -> None:
    emu.store.patch(SARA, {"asset_description": "Edited in the console", "tags": ["NEWS"]})

    result = run("drift")
    assert result.exit_code == 2, result.output
    assert f'# asset "Sara Model" ({SARA}) has drifted from its manifest' in result.output
    lines = result.output.splitlines()
    at = lines.index("  ~ asset_description")
    assert lines[at + 1].split() == ["manifest:", '"Virtual', 'employee"']
    assert lines[at + 2].split() == ["live:", '"Edited', "in", "the", 'console"']
    assert "  ~ tags" in lines
    assert "Drift: 1 drifted, 0 missing, 0 blocked, 2 in sync, 0 errors." in result.output

    applied = run("apply", "manifests", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    after = run("drift")
    assert after.exit_code == 0, after.output


def test_update_through_the_api_brings_it_back_in_sync(run: Run, emu: RunningEmulator) -> None:
    emu.store.patch(VOICE, {"asset_name": "Renamed"})
    assert run("drift").exit_code == 2
    response = emu.request("PUT", emu.assets_path(VOICE), json_body={"asset_name": "Warm Voice"})
    assert response.status_code == 200, response.text
    assert run("drift").exit_code == 0


def test_unmanaged_assets_and_coverage(run: Run) -> None:
    result = run("drift", "--format", "json", "--include-unmanaged")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["format_version"] == "1.1"
    assert report["summary"]["managed"] == 3
    assert report["summary"]["total"] == 5
    assert report["summary"]["unmanaged"] == 2
    assert report["summary"]["coverage"] == pytest.approx(0.6)
    project = report["projects"][0]
    assert project["project_id"] == "p-test"
    assert [u["asset_id"] for u in project["unmanaged"]] == [LOOSE_1, LOOSE_2]
    assert report["generated_at"].endswith("Z")

    counted_only = json.loads(run("drift", "--format", "json").output)
    assert counted_only["summary"]["unmanaged"] == 2
    assert "unmanaged" not in counted_only["projects"][0]

    text = run("drift").output
    assert "Unmanaged: 2 assets in the project are in no manifest" in text
    assert "Coverage: 3 of 5 assets managed (60.0%)." in text


def test_missing_and_blocked_assets_are_drift(run: Run, emu: RunningEmulator) -> None:
    emu.store.seed(
        [
            {
                "asset_id": FROZEN,
                "asset_name": "Frozen",
                "asset_type": "VIDEO",
                "asset_state": "BLOCK",
            }
        ],
        emu.project_id,
    )
    extra = f"""\
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata: {{asset_id: {GONE}}}
spec: {{asset_name: Gone}}
---
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata: {{asset_id: {FROZEN}}}
spec: {{asset_name: Frozen}}
"""
    Path("manifests/more.yaml").write_text(extra)
    result = run("drift", "--format", "json")
    assert result.exit_code == 2, result.output
    statuses = {
        a["asset_id"]: a["status"] for a in json.loads(result.output)["projects"][0]["assets"]
    }
    assert statuses[GONE] == "missing"
    assert statuses[FROZEN] == "blocked"
    assert statuses[SARA] == "in-sync"


def test_a_manifest_that_cannot_be_compared_exits_1(run: Run) -> None:
    Path("manifests/bad.yaml").write_text(
        f"""\
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata: {{asset_id: {LOOSE_1}}}
spec:
  asset_extra_meta:
    human_model_2d_meta: {{support_live: true}}
"""
    )
    result = run("drift")
    assert result.exit_code == 1, result.output
    assert "could not be checked" in result.output


def test_markdown_report_to_a_file(run: Run, emu: RunningEmulator) -> None:
    emu.store.patch(SARA, {"asset_name": "Sara | <b>Edited</b>"})
    result = run("drift", "--format", "markdown", "--output", "drift.md", "--include-unmanaged")
    assert result.exit_code == 2
    body = Path("drift.md").read_text()
    assert body.startswith("<!-- reconciler:drift target=default -->\n## reconciler drift report")
    assert "| drifted | 1 |" in body
    assert "<summary>~ <b>Sara Model</b>" in body
    # The live value is escaped: it cannot open a tag or split the table row.
    assert "<b>Edited</b>" not in body
    assert "Unmanaged A" in body
    assert "drift.md" in result.output  # the note on stderr (mixed into output by CliRunner)


def test_out_is_the_same_option_as_output(run: Run) -> None:
    result = run("drift", "--format", "json", "--out", "drift.json")
    assert result.exit_code == 0, result.output
    assert json.loads(Path("drift.json").read_text())["summary"]
