"""``reconciler import`` end to end: import a seeded project, then plan it: no changes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from reconciler.emulator.store import generate_assets
from reconciler.emulator.testing import RunningEmulator, run_emulator
from reconciler.engine.plan import Action
from reconciler.engine.planner import desired_from_loaded
from reconciler.live.plan import build_plan
from reconciler.manifest.loader import load_manifests

pytestmark = pytest.mark.e2e

EXTRA: list[dict[str, Any]] = [
    {
        "asset_id": "aaaaaaaa-0000-4000-8000-000000000001",
        "asset_name": "新闻主播",  # no Latin letters: the file name falls back to the type
        "asset_type": "VOICE_MODEL",
        "asset_state": "ACTIVED",
        "tags": ["NEWS"],
        "asset_extra_meta": {"voice_model_meta": {"languages": ["EN", "CN"], "speed_ratio": 1.5}},
    },
    {
        "asset_id": "aaaaaaaa-0000-4000-8000-000000000002",
        "asset_name": "Frozen clip",
        "asset_type": "VIDEO",
        "asset_state": "BLOCK",
        "system_properties": [{"key": "MATERIAL_VIDEO", "value": "Yes"}],
        "auto_operation_config": [
            {"operation": "DELETE", "operation_time": "2030-01-01T08:00:00+08:00"}
        ],
    },
]


def invoke(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(cli, ["--no-color", *args], catch_exceptions=False)


async def plan_of(emu: RunningEmulator, directory: Path) -> list[Any]:
    desired = [desired_from_loaded(item) for item in load_manifests([directory])]
    async with emu.client(parallelism=8) as client:
        plan = await build_plan(
            desired,
            client,
            state=None,
            target_name="emu",
            project_id=emu.project_id,
            endpoint=emu.base_url,
        )
    return plan.assets


def test_import_all_then_plan_shows_no_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    seeded = generate_assets(30, seed=7, project_id="p-test") + EXTRA
    with run_emulator(seeded) as emu:
        result = invoke(emu, monkeypatch, "import", "--all")
        assert result.exit_code == 0, result.output
        # The BLOCK asset is left out with a note: a manifest for it would only make drift
        # and watch report it as blocked.
        assert "Import: 31 created, 0 updated, 0 already in sync, 1 skipped (not updatable)." in (
            result.output
        )
        assert "'Frozen clip' ('aaaaaaaa-0000-4000-8000-000000000002') is BLOCK" in result.output
        files = sorted(p.name for p in Path("manifests").glob("*.yaml"))
        assert len(files) == 31
        assert "voice-model-aaaaaaaa.yaml" in files
        assert not Path("manifests/frozen-clip-aaaaaaaa.yaml").exists()

        assets = asyncio.run(plan_of(emu, Path("manifests")))
        assert len(assets) == 31
        assert all(a.action is Action.NOOP for a in assets), [
            (a.asset_id, a.changes, a.errors) for a in assets if a.action is not Action.NOOP
        ]

        # The CLI agrees, and a second import finds everything in sync.
        planned = invoke(
            emu, monkeypatch, "plan", "--detailed-exitcode", "--asset", seeded[0]["asset_id"]
        )
        assert planned.exit_code == 0, planned.output
        again = invoke(emu, monkeypatch, "import", "--all")
        assert "Import: 0 created, 0 updated, 31 already in sync, 1 skipped" in again.output
        drift = invoke(emu, monkeypatch, "drift")
        assert drift.exit_code == 0, drift.output  # nothing blocked among the manifests


def test_reimport_by_id_updates_the_existing_manifest_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    asset_id = EXTRA[0]["asset_id"]
    with run_emulator([dict(EXTRA[0])]) as emu:
        custom = Path("manifests/team/voice.yaml")
        custom.parent.mkdir(parents=True)
        custom.write_text(
            "# owned by the audio team\n"
            "apiVersion: reconciler.metastudio/v1\n"
            "kind: DigitalAsset\n"
            f"metadata: {{asset_id: {asset_id}}}\n"
            "spec:\n"
            "  tags: [NEWS]  # keep\n"
        )
        emu.store.patch(asset_id, {"tags": ["NEWS", "CHINA"]})
        result = invoke(emu, monkeypatch, "import", asset_id)
        assert result.exit_code == 0, result.output
        assert f"updated  {custom}" in result.output
        assert list(Path("manifests").rglob("*.yaml")) == [custom]
        text = custom.read_text()
        assert text.startswith("# owned by the audio team\n")
        [tags_line] = [line for line in text.splitlines() if "tags:" in line]
        assert tags_line.startswith("  tags: [NEWS, CHINA]") and tags_line.endswith("# keep")
        assert "speed_ratio: 1.5" in text


def test_import_of_an_unknown_id_fails_but_imports_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with run_emulator([dict(EXTRA[0])]) as emu:
        result = invoke(
            emu, monkeypatch, "import", EXTRA[0]["asset_id"], "no-such-asset", "--dir", "out"
        )
        assert result.exit_code == 1
        assert "asset no-such-asset does not exist" in result.output
        written = sorted(p.name for p in Path("out").iterdir())
        assert written == ["manifest.schema.json", "voice-model-aaaaaaaa.yaml"]


def test_import_needs_ids_or_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["import"])
    assert result.exit_code == 1
    assert "give asset ids to import, or --all" in str(result.exception)


LOCAL_EDIT = (
    "# kept\n"
    "apiVersion: reconciler.metastudio/v1\n"
    "kind: DigitalAsset\n"
    "metadata: {{asset_id: {asset_id}}}\n"
    "spec:\n"
    "  asset_name: Not applied yet  # a local edit\n"
    "  tags: [NEWS]\n"
    "  system_properties:\n"
    "    MATERIAL_VIDEO: Yes\n"
    "    BACKGROUND_IMG: Yes\n"
)


def test_reimport_prints_every_value_it_changes_and_check_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    frozen = dict(EXTRA[1], asset_state="ACTIVED")
    asset_id = frozen["asset_id"]
    with run_emulator([frozen]) as emu:
        manifest = Path("manifests/clip.yaml")
        manifest.parent.mkdir()
        manifest.write_text(LOCAL_EDIT.format(asset_id=asset_id))
        before = manifest.read_text()

        checked = invoke(emu, monkeypatch, "import", asset_id, "--check")
        assert checked.exit_code == 2, checked.output
        assert f"would update  {manifest}" in checked.output
        assert f'~ asset_name: "Not applied yet" -> "Frozen clip" (asset {asset_id})' in (
            checked.output
        )
        assert "nothing was written" in checked.output
        assert manifest.read_text() == before
        assert not Path("manifests/manifest.schema.json").exists()

        result = invoke(emu, monkeypatch, "import", asset_id)
        assert result.exit_code == 0, result.output
        assert f"updated  {manifest}" in result.output
        assert '~ asset_name: "Not applied yet" -> "Frozen clip"' in result.output
        text = manifest.read_text()
        assert "asset_name: Frozen clip" in text and "# a local edit" in text, text
        # System properties: the named keys are refreshed one by one, no other key is added.
        assert "MATERIAL_VIDEO: Yes" in text and "BACKGROUND_IMG:" in text
        assert "BACKGROUND_IMG: Yes" not in text  # live has no such key: null (delete)
        assert '- system_properties.BACKGROUND_IMG: "Yes" -> null' in result.output

        again = invoke(emu, monkeypatch, "import", asset_id, "--check")
        assert again.exit_code == 0, again.output
        assert f"in sync  {manifest}" in again.output


def test_check_on_a_new_asset_exits_2_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with run_emulator([dict(EXTRA[0])]) as emu:
        result = invoke(emu, monkeypatch, "import", "--all", "--check")
        assert result.exit_code == 2, result.output
        assert "would create  manifests/voice-model-aaaaaaaa.yaml" in result.output
        assert not Path("manifests").exists()
