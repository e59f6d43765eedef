"""One rule for which files are manifests, shared by the loader and ``import``.

Regression: the loader skipped hidden folders while ``import`` rewrote manifests inside them
(``.git``, ``.github``, editor backups), changing files that ``plan`` and ``apply`` never read.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.importer import write_imports
from reconciler.manifest.discovery import manifest_files
from reconciler.manifest.loader import load_manifests

ASSET = "93769b5a-c8c6-4692-9c95-53933a1f0c93"
MANIFEST = f"""\
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: {ASSET}
spec:
  asset_name: Backup copy
"""


def test_hidden_files_and_folders_are_not_manifests(tmp_path: Path) -> None:
    (tmp_path / "team" / ".backup").mkdir(parents=True)
    (tmp_path / "team" / "a.yaml").write_text(MANIFEST)
    (tmp_path / "team" / "b.yml").write_text(MANIFEST)
    (tmp_path / "team" / ".hidden.yaml").write_text(MANIFEST)
    (tmp_path / "team" / ".backup" / "c.yaml").write_text(MANIFEST)
    (tmp_path / "team" / "notes.txt").write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in manifest_files(tmp_path)]
    assert found == ["team/a.yaml", "team/b.yml"]


def test_import_leaves_a_manifest_in_a_hidden_folder_alone(tmp_path: Path) -> None:
    hidden = tmp_path / ".git" / "old.yaml"
    hidden.parent.mkdir()
    hidden.write_text(MANIFEST, encoding="utf-8")
    result = write_imports([{"asset_id": ASSET, "asset_name": "Live name"}], tmp_path)
    assert hidden.read_text(encoding="utf-8") == MANIFEST
    assert result.updated == [] and len(result.created) == 1
    created = result.created[0]
    assert ".git" not in created.parts
    # What import wrote is what the loader reads: exactly one manifest for the asset.
    loaded = load_manifests([tmp_path])
    assert [(m.file, m.desired["asset_name"]) for m in loaded] == [(created, "Live name")]
