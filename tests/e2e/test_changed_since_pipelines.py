"""The example pipelines with ``--changed-since``: the pull-request plan covers what the pull
request changes since its merge base, the apply on merge what the push changed since the commit
before it, and nothing else (an asset edited in the console meanwhile is left to drift)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator.testing import RunningEmulator, run_emulator
from tests.e2e.forges import TOKEN, Forge, serve_forge
from tests.e2e.test_github_pipelines import READ, WRITE
from tests.e2e.test_gitlab_pipeline import PROJECT_VARIABLES, PROTECTED, GitLabJob
from tests.e2e.workflow_runner import Runner

pytestmark = pytest.mark.e2e

IDS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(4)]


def live() -> list[dict[str, Any]]:
    return [
        {
            "asset_id": asset_id,
            "asset_name": f"Voice {i}",
            "asset_type": "VOICE_MODEL",
            "asset_state": "ACTIVED",
            "tags": ["FEMALE"],
        }
        for i, asset_id in enumerate(IDS)
    ]


def manifest(i: int, name: str | None = None) -> str:
    return (
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
        f"metadata:\n  asset_id: {IDS[i]}\nspec:\n  asset_name: {name or f'Voice {i}'}\n"
    )


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main with every manifest in sync, then a commit that renames asset 1 (the pull
    request's change, already merged where the push is tested)."""
    root = tmp_path / "repo"
    (root / "manifests").mkdir(parents=True)
    for i in range(len(IDS)):
        (root / "manifests" / f"voice-{i}.yaml").write_text(manifest(i))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    (root / "manifests" / "voice-1.yaml").write_text(manifest(1, "Voice one"))
    git(root, "commit", "-q", "-a", "-m", "rename voice 1")
    return root


def base(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD~1")


def drift_in_console(emu: RunningEmulator) -> None:
    """An edit nobody reviewed: a plan or apply of what the PR changed must not touch it."""
    emu.store.patch(IDS[3], {"asset_name": "Edited in the console"})


def ids_read(emu: RunningEmulator) -> list[str]:
    reads = [e for e in emu.requests() if e["method"] == "GET"]
    assert reads
    asked = [[value for key, value in e["query"] if key == "asset_id"] for e in reads]
    assert all(asked), f"a full listing was sent: {asked}"
    return sorted(i for ids in asked for i in ids)


@pytest.fixture
def forge_github() -> Iterator[Forge]:
    with serve_forge("github") as forge:
        yield forge


@pytest.fixture
def forge_gitlab() -> Iterator[Forge]:
    with serve_forge("gitlab") as forge:
        yield forge


def github_runner(repo: Path, tmp_path: Path, forge: Forge, emu: RunningEmulator) -> Runner:
    temp = tmp_path / "runner-temp"
    temp.mkdir(exist_ok=True)
    runner = Runner(
        workdir=repo,
        temp=temp,
        api_url=forge.base_url,
        token=TOKEN,
        secrets={
            "METASTUDIO_READ_AK": READ["ak"],
            "METASTUDIO_READ_SK": READ["sk"],
            "METASTUDIO_WRITE_AK": WRITE["ak"],
            "METASTUDIO_WRITE_SK": WRITE["sk"],
            "RECONCILER_STATE": "",
            "RECONCILER_STATE_READ": "",
        },
        vars={"METASTUDIO_PROJECT_ID": "p-test", "METASTUDIO_REGION": "cn-north-4"},
        network={"HUAWEICLOUD_SDK_REGION_METASTUDIO_CN_NORTH_4": emu.base_url},
    )
    runner.link_tool()
    return runner


def test_github_plan_covers_the_pull_request_and_apply_the_push(
    repo: Path, tmp_path: Path, forge_github: Forge
) -> None:
    with run_emulator(live(), **READ) as emu:
        drift_in_console(emu)
        runner = github_runner(repo, tmp_path, forge_github, emu)
        event = {"pull_request": {"number": 7, "base": {"sha": base(repo)}}}
        [plan] = runner.run_workflow("reconciler-plan.yml", "pull_request", event)
        assert plan.code == 0, plan.stdout
        [comment] = forge_github.comments[7]
        assert "Voice one" in comment["body"]
        assert "Edited in the console" not in comment["body"]
        assert ids_read(emu) == [IDS[1]]

    with run_emulator(live(), **WRITE) as emu:
        drift_in_console(emu)
        runner = github_runner(repo, tmp_path, forge_github, emu)
        [apply] = runner.run_workflow("reconciler-apply.yml", "push", {"before": base(repo)})
        assert apply.code == 0, apply.stdout
        puts = [e["path"].rsplit("/", 1)[1] for e in emu.requests() if e["method"] == "PUT"]
        assert puts == [IDS[1]]
        assert ids_read(emu) == [IDS[1], IDS[1]]  # the plan's read, then the one before the PUT
        assert emu.store.get(IDS[3])["asset_name"] == "Edited in the console"


def test_gitlab_plan_covers_the_merge_request_and_apply_the_push(
    repo: Path, forge_gitlab: Forge
) -> None:
    with run_emulator(live(), **READ) as emu:
        drift_in_console(emu)
        job = GitLabJob(repo, forge_gitlab.base_url, emu.base_url)
        done = job.run("plan", {**PROJECT_VARIABLES, "CI_MERGE_REQUEST_DIFF_BASE_SHA": base(repo)})
        assert done.returncode == 0, done.stdout + done.stderr
        [note] = forge_gitlab.comments[7]
        assert "Voice one" in note["body"] and "Edited in the console" not in note["body"]
        assert ids_read(emu) == [IDS[1]]

    with run_emulator(live(), **WRITE) as emu:
        drift_in_console(emu)
        job = GitLabJob(repo, forge_gitlab.base_url, emu.base_url)
        on_main = {**PROJECT_VARIABLES, **PROTECTED, "CI_COMMIT_BEFORE_SHA": base(repo)}
        done = job.run("apply", on_main)
        assert done.returncode == 0, done.stdout + done.stderr
        puts = [e["path"].rsplit("/", 1)[1] for e in emu.requests() if e["method"] == "PUT"]
        assert puts == [IDS[1]]
        assert emu.store.get(IDS[3])["asset_name"] == "Edited in the console"
