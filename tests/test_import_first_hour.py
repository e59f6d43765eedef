"""Import as a newcomer meets it: assets that cannot be updated are left out with a note, and
re-importing into a commented manifest keeps each comment beside what it describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.importer import write_imports
from reconciler.render.import_text import skipped_line, summary
from tests.test_importer import SARA, live_sara

BLOCKED = "e2e00000-3333-4444-8555-666677778888"


@pytest.mark.parametrize("state", ["BLOCK", "FAILED", "CREATING", "DELETING", "DELETED"])
def test_an_asset_that_cannot_be_updated_is_not_imported(tmp_path: Path, state: str) -> None:
    stuck = live_sara(asset_id=BLOCKED, asset_name="Blocked Upload", asset_state=state)
    result = write_imports([live_sara(), stuck], tmp_path)
    assert [p.name for p in result.created] == ["sara-model-93769b5a.yaml"]
    assert not list(tmp_path.glob("blocked-upload*"))
    assert [skipped_line(s) for s in result.skipped] == [
        f"Note: asset 'Blocked Upload' ('{BLOCKED}') is {state}, a state that does not allow "
        "updates: not imported (import it once the service lets it be updated)"
    ]
    assert summary(result) == (
        "Import: 1 created, 0 updated, 0 already in sync, 1 skipped (not updatable)."
    )


def test_an_existing_manifest_of_a_blocked_asset_is_left_as_it_is(tmp_path: Path) -> None:
    write_imports([live_sara()], tmp_path)
    manifest = tmp_path / "sara-model-93769b5a.yaml"
    before = manifest.read_text(encoding="utf-8")
    result = write_imports([live_sara(asset_state="BLOCK", asset_name="Renamed")], tmp_path)
    assert manifest.read_text(encoding="utf-8") == before
    assert len(result.skipped) == 1 and not result.updated


COMMENTED = f"""\
# The avatar of the news desk.
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: {SARA}
spec:
  asset_name: Sara Model  # the name viewers see
  asset_description: Edited in the console
  asset_state: ACTIVED
  tags: [NEWS, FEMALE]
  asset_extra_meta:
    human_model_2d_meta:
      # device_names is the studio list; order does not matter.
      device_names: [studio-a, studio-c]
      support_live: false
      model_resolution: 1080P
      # model_version is left to the console.
  # system_properties are left to the platform.
"""


def test_reimport_keeps_trailing_comments_with_the_block_they_close(tmp_path: Path) -> None:
    manifest = tmp_path / "sara.yaml"
    manifest.write_text(COMMENTED, encoding="utf-8")
    # Live has a nested key and a top-level key the manifest lacks: both are appended.
    result = write_imports([live_sara()], tmp_path)
    assert result.updated == [manifest]
    assert manifest.read_text(encoding="utf-8") == COMMENTED.replace(
        "      model_resolution: 1080P\n"
        "      # model_version is left to the console.\n"
        "  # system_properties are left to the platform.\n",
        "      model_resolution: 1080P\n"
        "      model_version: V3\n"
        "      # model_version is left to the console.\n"
        "  asset_order: 7\n"
        "  # system_properties are left to the platform.\n",
    )


BLOCK_LIST = f"""\
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: {SARA}
spec:
  asset_name: Sara Model
  asset_description: Edited in the console
  asset_state: ACTIVED
  asset_order: 7
  tags:
    - NEWS
    - FEMALE
    # tags are matched as a set.
  # asset_extra_meta is managed in another file.
"""


def test_reimport_keeps_a_note_after_a_block_list_at_the_end_of_spec(tmp_path: Path) -> None:
    manifest = tmp_path / "sara.yaml"
    manifest.write_text(BLOCK_LIST, encoding="utf-8")
    write_imports([live_sara(asset_extra_meta={})], tmp_path)
    assert manifest.read_text(encoding="utf-8") == BLOCK_LIST


def test_reimport_appends_below_a_block_list_and_its_note(tmp_path: Path) -> None:
    manifest = tmp_path / "sara.yaml"
    manifest.write_text(BLOCK_LIST.replace("  asset_order: 7\n", ""), encoding="utf-8")
    write_imports([live_sara(asset_extra_meta={})], tmp_path)
    assert manifest.read_text(encoding="utf-8").endswith(
        "  tags:\n"
        "    - NEWS\n"
        "    - FEMALE\n"
        "    # tags are matched as a set.\n"
        "  asset_order: 7\n"
        "  # asset_extra_meta is managed in another file.\n"
    )
