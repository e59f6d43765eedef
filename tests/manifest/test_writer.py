"""Regression: ``import`` rewriting a manifest made it 0600 (the temporary file's mode)."""

from __future__ import annotations

import stat
from pathlib import Path

from reconciler.importer import write_imports

ASSET = "93769b5a-c8c6-4692-9c95-53933a1f0c93"
MANIFEST = f"""\
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: {ASSET}
spec:
  asset_name: Old name  # a comment kept across the rewrite
"""


def test_reimport_keeps_the_manifest_files_mode(tmp_path: Path) -> None:
    path = tmp_path / "sara.yaml"
    path.write_text(MANIFEST, encoding="utf-8")
    path.chmod(0o644)
    result = write_imports([{"asset_id": ASSET, "asset_name": "New name"}], tmp_path)
    assert result.updated == [path]
    assert "asset_name: New name" in path.read_text(encoding="utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
