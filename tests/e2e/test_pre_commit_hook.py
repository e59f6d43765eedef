"""The pre-commit hook this repository provides, and the configuration docs/gitops.md shows."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from tests.e2e.workflow_runner import ROOT, load, require_full_history

HOOKS = ROOT / ".pre-commit-hooks.yaml"
DOCS = ROOT / "docs" / "gitops.md"


def documented_config() -> dict[str, object]:
    text = DOCS.read_text()
    block = re.search(r"```yaml\n(# \.pre-commit-config\.yaml.*?)```", text, re.S)
    assert block, "docs/gitops.md shows a .pre-commit-config.yaml"
    loaded: dict[str, object] = YAML(typ="safe").load(block[1])
    return loaded


def test_the_hook_validates_a_manifests_folder(tmp_path: Path) -> None:
    [hook] = load(HOOKS)
    assert hook["pass_filenames"] is False  # duplicate asset ids span files
    (tmp_path / "manifests").mkdir()
    good = (ROOT / "manifests" / "avatar.yaml").read_text()
    (tmp_path / "manifests" / "avatar.yaml").write_text(good)
    entry = shlex.split(hook["entry"])
    assert entry[0] == "reconciler"
    command = [str(Path(sys.executable).with_name("reconciler")), *entry[1:], *hook["args"]]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (tmp_path / "manifests" / "bad.yaml").write_text(good.replace("asset_name", "asset_nmae"))
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "bad.yaml" in done.stderr


def test_the_documented_rev_exists_and_has_the_hook() -> None:
    [repo] = documented_config()["repos"]  # type: ignore[misc]
    rev = repo["rev"]
    assert re.fullmatch(r"[0-9a-f]{40}", rev), "a commit SHA until tags are published"
    assert [h["id"] for h in repo["hooks"]] == [h["id"] for h in load(HOOKS)]
    require_full_history()
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:.pre-commit-hooks.yaml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, f"{rev} is not a commit of this repository with the hooks"
    assert "id: reconciler-validate" in shown.stdout
