"""``plan``/``apply --changed-since REF`` end to end: a real git repository in a temporary
folder, the real CLI as a process, the emulator on loopback and its request record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_process import clean_env
from conftest import EmulatorFactory

from reconciler.emulator.testing import RunningEmulator

pytestmark = pytest.mark.e2e

COUNT = 30  # assets managed; a batch file holds the first BATCH of them, one file each the rest
BATCH = 20


def asset_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def _live(count: int = COUNT + 1) -> list[dict[str, Any]]:
    return [
        {
            "asset_id": asset_id(i),
            "asset_name": f"Voice {i:02d}",
            "asset_type": "VOICE_MODEL",
            "asset_state": "ACTIVED",
            "create_time": "2024-03-01T08:00:00Z",
            "update_time": "2024-03-02T09:30:00Z",
            "tags": ["FEMALE"],
        }
        for i in range(count)
    ]


def document(index: int, name: str | None = None, tags: str = "[FEMALE]") -> str:
    return (
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\nmetadata:\n"
        f"  asset_id: {asset_id(index)}\n"
        f"spec:\n  asset_name: {name or f'Voice {index:02d}'}\n  tags: {tags}\n"
    )


def batch(edits: dict[int, str] | None = None) -> str:
    edits = edits or {}
    return "---\n".join(edits.get(i, document(i)) for i in range(BATCH))


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose first commit holds every manifest, each in sync with live."""
    root = tmp_path / "repo"
    manifests = root / "manifests"
    manifests.mkdir(parents=True)
    (manifests / "batch.yaml").write_text(batch())
    for i in range(BATCH, COUNT):
        (manifests / f"one-{i:02d}.yaml").write_text(document(i))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "manifests")
    return root


@pytest.fixture
def live(emulator: EmulatorFactory) -> RunningEmulator:
    return emulator(_live())


def run(emu: RunningEmulator, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.update(emu.env())
    env["GIT_CEILING_DIRECTORIES"] = str(cwd.parent)  # a temp folder is never inside a repo
    command = [sys.executable, "-m", "reconciler", "--endpoint", emu.base_url, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def edit_some(repo: Path) -> None:
    """One document of the batch renamed, one comment added to another (no change), one
    single-document file retagged, one removed."""
    text = batch({5: document(5, name="Voice five")}).replace(
        f"asset_id: {asset_id(7)}", f"asset_id: {asset_id(7)}  # reviewed"
    )
    (repo / "manifests" / "batch.yaml").write_text(text)
    (repo / "manifests" / "one-21.yaml").write_text(document(21, tags="[FEMALE, NEWS]"))
    (repo / "manifests" / "one-25.yaml").unlink()


def list_reads(emu: RunningEmulator) -> list[list[str]]:
    """The ids each list request asked for (an empty list: a page of the whole listing)."""
    return [
        [value for key, value in entry["query"] if key == "asset_id"]
        for entry in emu.requests()
        if entry["method"] == "GET"
    ]


def test_plan_reads_and_shows_only_the_changed_documents(live: RunningEmulator, repo: Path) -> None:
    edit_some(repo)
    live.clear_requests()
    done = run(live, repo, "plan", "--changed-since", "HEAD", "--format", "json")
    assert done.returncode == 0, done.stderr
    target = json.loads(done.stdout)["targets"][0]
    planned = {a["asset_id"]: a["action"] for a in target["assets"]}
    assert planned == {asset_id(5): "update", asset_id(21): "update"}
    reads = list_reads(live)
    assert reads and all(reads), f"a full listing was sent: {reads}"
    assert sorted(i for ids in reads for i in ids) == sorted([asset_id(5), asset_id(21)])
    assert target["changed_since"] == {
        "ref": "HEAD",
        "managed": COUNT - 1,
        "planned": 2,
        "no_longer_managed": [
            {"asset_id": asset_id(25), "file": os.path.join("manifests", "one-25.yaml")}
        ],
    }
    assert any("no longer managed, nothing sent" in w for w in target["warnings"])
    assert not [e for e in live.requests() if e["method"] == "PUT"]


def test_text_and_markdown_name_the_removed_document_and_the_managed_count(
    live: RunningEmulator, repo: Path
) -> None:
    edit_some(repo)
    text = run(live, repo, "plan", "--changed-since", "HEAD", "--max-change-percent", "5")
    assert text.returncode == 0, text.stderr
    out = " ".join(text.stdout.split())
    assert "Plan: 2 to change, 0 unchanged." in out
    assert f"no longer managed, nothing sent: asset {asset_id(25)}" in out
    assert "the safety threshold counts all 29 managed assets" in out
    # 2 changes weighed against the 29 managed, not the 2 planned (which would be 100%).
    assert "2 of 29 managed assets (7%) would change" in out
    markdown = run(live, repo, "plan", "--changed-since", "HEAD", "--format", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    assert "no longer managed, nothing sent" in markdown.stdout
    assert asset_id(25) in markdown.stdout


def test_saved_plan_applies_exactly_the_changed_assets(live: RunningEmulator, repo: Path) -> None:
    edit_some(repo)
    saved = run(live, repo, "plan", "--changed-since", "HEAD", "--out", "plan.json")
    assert saved.returncode == 0, saved.stderr
    live.clear_requests()
    done = run(live, repo, "apply", "plan.json")
    assert done.returncode == 0, done.stderr
    puts = [e["path"].rsplit("/", 1)[1] for e in live.requests() if e["method"] == "PUT"]
    assert sorted(puts) == sorted([asset_id(5), asset_id(21)])
    state = {a["asset_id"]: a for a in live.state.store.all()}
    assert state[asset_id(5)]["asset_name"] == "Voice five"
    assert state[asset_id(25)]["asset_name"] == "Voice 25"  # removed document: left as it is


def test_apply_sends_only_what_changed_since_the_commit_before(
    live: RunningEmulator, repo: Path
) -> None:
    before = git(repo, "rev-parse", "HEAD")
    edit_some(repo)
    git(repo, "commit", "-q", "-a", "-m", "edits")
    live.clear_requests()
    done = run(live, repo, "apply", "--auto-approve", "--changed-since", before)
    assert done.returncode == 0, done.stderr
    bodies = {
        e["path"].rsplit("/", 1)[1]: e["body"] for e in live.requests() if e["method"] == "PUT"
    }
    assert set(bodies) == {asset_id(5), asset_id(21)}
    assert bodies[asset_id(5)]["asset_name"] == "Voice five"
    assert all(ids for ids in list_reads(live))
    # Nothing changed since HEAD now: nothing is read or sent.
    live.clear_requests()
    again = run(live, repo, "apply", "--auto-approve", "--changed-since", "HEAD")
    assert again.returncode == 0, again.stderr
    assert not [e for e in live.requests() if e["method"] in ("GET", "PUT")]


def test_renamed_id_is_a_removal_and_an_addition(live: RunningEmulator, repo: Path) -> None:
    (repo / "manifests" / "one-27.yaml").write_text(document(COUNT, name=f"Voice {COUNT}"))
    done = run(live, repo, "plan", "--changed-since", "HEAD", "--format", "json")
    assert done.returncode == 0, done.stderr
    target = json.loads(done.stdout)["targets"][0]
    assert [a["asset_id"] for a in target["assets"]] == [asset_id(COUNT)]
    removed = target["changed_since"]["no_longer_managed"]
    assert [item["asset_id"] for item in removed] == [asset_id(27)]


def test_duplicate_id_across_a_changed_and_an_unchanged_file_is_an_error(
    live: RunningEmulator, repo: Path
) -> None:
    (repo / "manifests" / "one-22.yaml").write_text(document(3))  # batch.yaml declares it
    live.clear_requests()
    done = run(live, repo, "plan", "--changed-since", "HEAD")
    assert done.returncode == 1
    assert "declared twice" in done.stderr
    assert "batch.yaml" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Plan:" not in done.stdout


@pytest.mark.parametrize("command", [("plan",), ("apply", "--auto-approve")])
def test_unknown_revision_is_a_clear_error(
    live: RunningEmulator, repo: Path, command: tuple[str, ...]
) -> None:
    done = run(live, repo, *command, "--changed-since", "no-such-branch")
    assert done.returncode == 1
    assert "--changed-since no-such-branch: no such revision" in done.stderr
    assert "Traceback" not in done.stderr


def test_outside_a_repository_is_a_clear_error(live: RunningEmulator, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    (folder / "manifests").mkdir(parents=True)
    (folder / "manifests" / "a.yaml").write_text(document(1))
    done = run(live, folder, "plan", "--changed-since", "main")
    assert done.returncode == 1
    assert "--changed-since main:" in done.stderr
    assert "not in a git repository" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_git_is_a_clear_error(live: RunningEmulator, repo: Path) -> None:
    env_path = os.environ.get("PATH", "")
    try:
        os.environ["PATH"] = str(Path(sys.executable).parent)  # python, but no git
        done = run(live, repo, "plan", "--changed-since", "HEAD")
    finally:
        os.environ["PATH"] = env_path
    assert done.returncode == 1
    assert "git is not installed" in done.stderr
    assert "Traceback" not in done.stderr
