"""``plan --changed-since`` over several targets: each target's plan covers its own changed
documents, lists its own removed ones, and weighs its threshold against its own managed count."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.e2e.test_targets import PROD_IDS, STAGING_IDS, Repo, _manifest, repo

pytestmark = pytest.mark.e2e

__all__ = ["repo"]  # the fixture: two targets, two emulators


def git(repo: Repo, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=repo.root,
        check=True,
        capture_output=True,
    )


def test_each_target_plans_and_lists_its_own_changes(repo: Repo) -> None:
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "both targets")
    manifests = repo.root / "manifests"
    (manifests / "prod.yaml").write_text(
        "---\n".join(
            [
                _manifest(PROD_IDS[0], "Prod Renamed", "prod"),  # committed: not planned
                _manifest(PROD_IDS[1], "Prod one", "prod"),
                _manifest(PROD_IDS[2], "Prod 2", "prod"),
            ]
        )
    )
    (manifests / "staging.yaml").write_text(_manifest(STAGING_IDS[0], "Staging Renamed"))
    for emu in (repo.prod, repo.staging):
        emu.clear_requests()

    done = repo.process("plan", "--changed-since", "HEAD", "--format", "json")
    assert done.returncode == 0, done.stderr
    plans = {t["target"]: t for t in json.loads(done.stdout)["targets"]}
    assert [a["asset_id"] for a in plans["prod"]["assets"]] == [PROD_IDS[1]]
    assert plans["prod"]["changed_since"]["managed"] == 3
    assert plans["prod"]["changed_since"]["no_longer_managed"] == []
    assert plans["staging"]["assets"] == []
    assert plans["staging"]["changed_since"]["managed"] == 1
    [removed] = plans["staging"]["changed_since"]["no_longer_managed"]
    assert removed["asset_id"] == STAGING_IDS[1]
    prod_reads = [
        [v for k, v in e["query"] if k == "asset_id"]
        for e in repo.prod.requests()
        if e["method"] == "GET"
    ]
    assert prod_reads == [[PROD_IDS[1]]]
    assert not [e for e in repo.staging.requests() if e["method"] == "GET"]
