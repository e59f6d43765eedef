"""Import without a server: live JSON -> spec, file names, and in-place re-import (golden)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from reconciler.importer import file_name, spec_from_live, validated, write_imports
from reconciler.manifest.loader import load_manifests
from reconciler.manifest.schema import manifest_json_schema

GOLDEN = Path(__file__).parent / "golden" / "import"
SARA = "93769b5a-c8c6-4692-9c95-53933a1f0c93"


def live_sara(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "project_id": "p1",
        "asset_id": SARA,
        "asset_name": "Sara Model",
        "asset_description": "Edited in the console",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "create_time": "2024-01-01T00:00:00Z",
        "update_time": "2025-01-01T00:00:00Z",
        "tags": ["NEWS", "FEMALE"],
        "asset_order": 7,
        "files": [{"file_id": "f1", "download_url": "https://example.invalid/x"}],
        "asset_extra_meta": {
            "human_model_2d_meta": {
                "support_live": False,
                "model_resolution": "1080P",
                "model_version": "V3",
                "device_names": ["studio-a", "studio-c"],
            },
            "image_meta": {"width": 1920},
        },
    }
    data.update(changes)
    return data


def test_spec_keeps_only_writable_fields_in_manifest_shape() -> None:
    spec = spec_from_live(
        {
            **live_sara(),
            "asset_description": "",
            "system_properties": [{"key": "BACKGROUND_SCENE", "value": "Horizontal"}],
            "supported_service": [],
            "auto_operation_config": [
                {"operation": "BLOCK", "operation_time": "2030-01-01T00:00:00Z", "extra": 1}
            ],
        }
    )
    assert spec == {
        "asset_name": "Sara Model",
        "asset_state": "ACTIVED",
        "tags": ["NEWS", "FEMALE"],
        "asset_extra_meta": {
            "human_model_2d_meta": {
                "support_live": False,
                "model_resolution": "1080P",
                "model_version": "V3",
                "device_names": ["studio-a", "studio-c"],
            }
        },
        "asset_order": 7,
        "auto_operation_config": [{"operation": "BLOCK", "operation_time": "2030-01-01T00:00:00Z"}],
    }


def test_read_only_metadata_and_service_states_are_not_imported() -> None:
    voice = spec_from_live(
        {
            "asset_id": "v1",
            "asset_type": "VOICE_MODEL",
            "asset_state": "BLOCK",
            "asset_extra_meta": {
                "voice_model_meta": {"languages": ["CN"], "voice_capability": {"x": True}}
            },
        }
    )
    assert voice == {"asset_extra_meta": {"voice_model_meta": {"languages": ["CN"]}}}
    ppt = spec_from_live(
        {
            "asset_id": "p",
            "asset_type": "PPT",
            "asset_extra_meta": {
                "ppt_meta": {"auto_analysis": True, "ppt_analysis_status": "SUCCEEDED"}
            },
        }
    )
    assert ppt == {"asset_extra_meta": {"ppt_meta": {"auto_analysis": True}}}
    video = spec_from_live(
        {"asset_id": "v", "asset_type": "VIDEO", "asset_extra_meta": {"video_meta": {"width": 1}}}
    )
    assert video == {}


def test_values_the_schema_rejects_are_left_out_with_a_warning() -> None:
    spec, problems = validated(spec_from_live(live_sara(supported_service=["HOLOGRAM_3D"])))
    assert "supported_service" not in spec
    assert spec["asset_name"] == "Sara Model"
    assert len(problems) == 1 and problems[0].startswith("supported_service not imported")


def test_file_names_are_readable_stable_and_unique() -> None:
    assert file_name(live_sara()) == "sara-model-93769b5a.yaml"
    assert file_name({"asset_id": SARA, "asset_name": "新闻主播", "asset_type": "VOICE_MODEL"}) == (
        "voice-model-93769b5a.yaml"
    )


def test_new_manifests_validate(tmp_path: Path) -> None:
    result = write_imports([live_sara()], tmp_path)
    assert [p.name for p in result.created] == ["sara-model-93769b5a.yaml"]
    [loaded] = load_manifests([tmp_path])
    assert loaded.manifest.metadata.asset_id == SARA
    assert loaded.desired["asset_extra_meta"]["human_model_2d_meta"]["model_version"] == "V3"
    text = result.created[0].read_text()
    # Editors find the schema through the first line; the schema is written beside the file.
    assert text.startswith(
        "# yaml-language-server: $schema=manifest.schema.json\n# asset_type: HUMAN_MODEL_2D"
    )
    assert result.schema == tmp_path / "manifest.schema.json"
    assert json.loads(result.schema.read_text()) == manifest_json_schema()
    assert "files" not in text and "update_time" not in text and "image_meta" not in text


def test_reimport_keeps_comments_layout_and_write_only_fields(tmp_path: Path) -> None:
    target = tmp_path / "sara.yaml"
    shutil.copy(GOLDEN / "commented.yaml", target)
    result = write_imports([live_sara()], tmp_path)
    assert result.updated == [target] and not result.created
    assert target.read_text() == (GOLDEN / "commented.expected.yaml").read_text()
    # Importing the same live state again changes nothing.
    again = write_imports([live_sara()], tmp_path)
    assert again.unchanged == [target] and not again.updated
    assert target.read_text() == (GOLDEN / "commented.expected.yaml").read_text()


def test_fields_cleared_live_stay_managed_as_empty(tmp_path: Path) -> None:
    target = tmp_path / "sara.yaml"
    shutil.copy(GOLDEN / "commented.yaml", target)
    write_imports([live_sara(tags=[], asset_description=None)], tmp_path)
    spec = YAML(typ="safe").load_all(target.read_text())
    first = next(iter(spec))["spec"]
    assert first["tags"] == []
    assert first["asset_description"] == ""
    assert first["review_config"] == {"no_need_review": True}
