"""Runs over several targets: two emulators on two ports, two projects, two credential families.

``prod`` reads its credentials under ``credentials_env_prefix: PROD_``; ``staging`` (the
``default_target``, so its manifests name no target) reads the plain names.  Each emulator accepts
only its own keys, so a run that reaches both proves each target signed with its own family.
The main flows run the CLI as a real process; the rest call its entry point in this process
(same argument parsing, error boundary and exit codes), which keeps the module fast.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import EmulatorFactory

from reconciler.cli.main import main
from reconciler.emulator.testing import RunningEmulator

pytestmark = pytest.mark.e2e

PROD_IDS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(3)]
STAGING_IDS = [f"11111111-0000-4000-8000-{i:012d}" for i in range(2)]


def _asset(asset_id: str, name: str) -> dict[str, Any]:
    return {
        "asset_id": asset_id,
        "asset_name": name,
        "asset_type": "IMAGE",
        "asset_state": "ACTIVED",
        "tags": ["NEWS"],
    }


def _manifest(asset_id: str, name: str, target: str | None = None) -> str:
    meta = f"  asset_id: {asset_id}\n" + (f"  target: {target}\n" if target else "")
    return (
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
        f"metadata:\n{meta}spec:\n  asset_name: {name}\n"
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Repo:
    """A repository with manifests for both targets, and the two emulators behind them."""

    root: Path
    prod: RunningEmulator
    staging: RunningEmulator
    env: dict[str, str]
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]

    def write_config(self, staging_endpoint: str | None = None) -> None:
        staging = staging_endpoint or self.staging.base_url
        (self.root / "reconciler.yaml").write_text(
            "default_target: staging\n"
            "targets:\n"
            "  prod:\n"
            f"    endpoint: {self.prod.base_url}\n"
            f"    project_id: {self.prod.project_id}\n"
            "    credentials_env_prefix: PROD_\n"
            "    rate_limits: {list: 0, show: 0, update: 0}\n"
            "  staging:\n"
            f"    endpoint: {staging}\n"
            f"    project_id: {self.staging.project_id}\n"
            "    rate_limits: {list: 0, show: 0, update: 0}\n"
            "    max_retries: 0\n"
            "    timeout: 5\n",
            encoding="utf-8",
        )

    def process(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI as its own process."""
        return subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The CLI's entry point in this process, in the repository, with only ``env`` set."""
        self.capsys.readouterr()
        code: int | str | None = 0
        with self.monkeypatch.context() as patch:
            patch.chdir(self.root)
            for name in list(os.environ):
                patch.delenv(name)
            for name, value in (env or self.env).items():
                patch.setenv(name, value)
            patch.setattr(sys, "argv", ["reconciler", *args])
            try:
                main()
            except SystemExit as exc:
                code = exc.code
        out = self.capsys.readouterr()
        return subprocess.CompletedProcess(list(args), int(code or 0), out.out, out.err)

    def puts(self, emu: RunningEmulator) -> list[dict[str, Any]]:
        return [r for r in emu.requests() if r.get("method") == "PUT"]

    def name(self, emu: RunningEmulator, asset_id: str) -> str:
        stored = emu.store.get(asset_id)
        assert stored is not None
        return str(stored["asset_name"])


@pytest.fixture
def repo(
    emulator: EmulatorFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Repo]:
    prod = emulator(
        [_asset(a, f"Prod {i}") for i, a in enumerate(PROD_IDS)],
        project_id="p-prod",
        ak="prod-ak",
        sk="prod-secret-key-0001",
    )
    staging = emulator(
        [_asset(a, f"Staging {i}") for i, a in enumerate(STAGING_IDS)],
        project_id="p-staging",
        ak="staging-ak",
        sk="staging-secret-key-02",
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HUAWEICLOUD_", "HW_", "PROD_")) and k != "NO_COLOR"
    }
    env.update(
        PROD_HUAWEICLOUD_SDK_AK=prod.ak,
        PROD_HUAWEICLOUD_SDK_SK=prod.sk,
        HUAWEICLOUD_SDK_AK=staging.ak,
        HUAWEICLOUD_SDK_SK=staging.sk,
    )
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    # prod: one rename, two in sync. staging (default target, no metadata.target): one rename.
    (manifests / "prod.yaml").write_text(
        "---\n".join(
            [
                _manifest(PROD_IDS[0], "Prod Renamed", "prod"),
                _manifest(PROD_IDS[1], "Prod 1", "prod"),
                _manifest(PROD_IDS[2], "Prod 2", "prod"),
            ]
        ),
        encoding="utf-8",
    )
    (manifests / "staging.yaml").write_text(
        "---\n".join(
            [_manifest(STAGING_IDS[0], "Staging Renamed"), _manifest(STAGING_IDS[1], "Staging 1")]
        ),
        encoding="utf-8",
    )
    found = Repo(tmp_path, prod, staging, env, monkeypatch, capsys)
    found.write_config()
    yield found


def test_plan_covers_every_target_the_manifests_name(repo: Repo) -> None:
    result = repo.process("plan", "--detailed-exitcode")
    assert result.returncode == 2, result.stderr
    out = result.stdout

    prod_at = out.index(f'Target "prod" ({repo.prod.project_id}, {repo.prod.base_url}):')
    staging_at = out.index(f'Target "staging" ({repo.staging.project_id}, ')
    assert prod_at < staging_at
    prod_part, staging_part = out[prod_at:staging_at], out[staging_at:]
    assert f"({PROD_IDS[0]}) will be updated in-place" in prod_part
    assert "Plan: 1 to change, 2 unchanged." in prod_part
    assert f"({STAGING_IDS[0]}) will be updated in-place" in staging_part
    assert "Plan: 1 to change, 1 unchanged." in staging_part
    assert out.rstrip().endswith("Total: 2 to change, 3 unchanged, across 2 targets.")
    # Each emulator was asked only about its own project's assets.
    assert all(r["path"].startswith(f"/v1/{repo.prod.project_id}/") for r in repo.prod.requests())
    assert repo.staging.requests() and all(
        r["path"].startswith(f"/v1/{repo.staging.project_id}/") for r in repo.staging.requests()
    )


def test_json_and_markdown_plans_have_one_entry_per_target(repo: Repo) -> None:
    result = repo.run("plan", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["format_version"] == "2.2"
    assert [(t["target"], t["project_id"]) for t in data["targets"]] == [
        ("prod", "p-prod"),
        ("staging", "p-staging"),
    ]
    assert [t["summary"]["to_change"] for t in data["targets"]] == [1, 1]
    assert data["summary"]["to_change"] == 2 and data["summary"]["failed_targets"] == 0
    markdown = repo.run("plan", "--format", "markdown").stdout
    assert "| <code>prod</code> | <code>p-prod</code> | 1 | 2 | 0 | 0 |" in markdown
    assert "### target prod" in markdown and "### target staging" in markdown


def test_target_narrows_the_run_to_that_targets_manifests(repo: Repo) -> None:
    result = repo.run("--target", "prod", "plan", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [t["target"] for t in data["targets"]] == ["prod"]
    assert {a["asset_id"] for a in data["targets"][0]["assets"]} == set(PROD_IDS)
    assert repo.staging.requests() == []
    both = repo.run("--target", "staging", "--target", "prod", "plan", "--format", "json")
    assert [t["target"] for t in json.loads(both.stdout)["targets"]] == ["staging", "prod"]
    # After the subcommand too, and the names given before and after add up.
    after = repo.run("--target", "staging", "plan", "--target", "prod", "--format", "json")
    assert [t["target"] for t in json.loads(after.stdout)["targets"]] == ["staging", "prod"]
    unknown = repo.run("--target", "nope", "plan")
    assert unknown.returncode == 1 and "no target named 'nope'" in unknown.stderr


def test_apply_reaches_both_projects_and_a_new_plan_is_empty(repo: Repo) -> None:
    result = repo.process("apply", "--auto-approve")
    assert result.returncode == 0, result.stderr
    assert f"prod: {PROD_IDS[0]}: updated" in result.stdout
    assert f"staging: {STAGING_IDS[0]}: updated" in result.stdout
    assert "prod: Apply complete! 1 changed, 0 failed." in result.stdout
    assert result.stdout.rstrip().endswith("Apply complete! 2 changed, 0 failed.")
    assert repo.name(repo.prod, PROD_IDS[0]) == "Prod Renamed"
    assert repo.name(repo.staging, STAGING_IDS[0]) == "Staging Renamed"
    assert len(repo.puts(repo.prod)) == 1 and len(repo.puts(repo.staging)) == 1
    again = repo.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("No changes. Live assets match the manifests.") == 2


def test_saved_plan_covers_both_targets(repo: Repo) -> None:
    saved = repo.run("plan", "--out", "plan.json")
    assert saved.returncode == 0, saved.stderr
    document = json.loads((repo.root / "plan.json").read_text())
    assert [t["target"] for t in document["targets"]] == ["prod", "staging"]
    result = repo.run("apply", "plan.json")
    assert result.returncode == 0, result.stderr
    assert repo.name(repo.prod, PROD_IDS[0]) == "Prod Renamed"
    assert repo.name(repo.staging, STAGING_IDS[0]) == "Staging Renamed"


def test_saved_plan_stale_in_one_target_sends_nothing_to_any(repo: Repo) -> None:
    assert repo.run("plan", "--out", "plan.json").returncode == 0
    repo.staging.store.patch(STAGING_IDS[1], {"asset_name": "Edited in the console"})
    result = repo.run("apply", "plan.json")
    assert result.returncode == 1
    assert "target staging: the saved plan is stale: 1 asset changed" in result.stderr
    assert STAGING_IDS[1] in result.stderr and "target prod" not in result.stderr
    assert repo.puts(repo.prod) == [] and repo.puts(repo.staging) == []
    # Narrowed to the target that did not move, the same file applies.
    narrowed = repo.run("--target", "prod", "apply", "plan.json")
    assert narrowed.returncode == 0, narrowed.stderr
    assert repo.name(repo.prod, PROD_IDS[0]) == "Prod Renamed"
    assert repo.puts(repo.staging) == []


def test_drift_reports_each_project(repo: Repo) -> None:
    repo.prod.store.patch(PROD_IDS[1], {"asset_name": "Edited"})
    repo.prod.store.seed([_asset("22222222-0000-4000-8000-000000000000", "Loose")], "p-prod")
    result = repo.run("drift", "--format", "json")
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    prod, staging = report["projects"]
    assert (prod["target"], prod["project_id"]) == ("prod", "p-prod")
    assert prod["summary"]["drifted"] == 2  # the planned rename and the console edit
    assert prod["summary"]["unmanaged"] == 1
    assert prod["summary"]["coverage"] == pytest.approx(3 / 4)
    assert (staging["target"], staging["summary"]["drifted"]) == ("staging", 1)
    assert staging["summary"]["coverage"] == 1.0
    text = repo.run("drift").stdout
    assert 'Target "prod": 2 drifted, 0 missing, 0 blocked, 0 error(s), 1 unmanaged.' in text
    assert "Coverage: 3 of 4 assets managed (75.0%)." in text
    assert 'Target "staging": 1 drifted' in text


def test_one_target_down_is_reported_under_it_and_blocks_apply(repo: Repo) -> None:
    repo.write_config(staging_endpoint=f"http://127.0.0.1:{_closed_port()}")
    result = repo.process("plan", "--detailed-exitcode")
    assert result.returncode == 1
    staging_part = result.stdout[result.stdout.index('Target "staging"') :]
    assert "Error: this target could not be planned (2 manifests not planned)" in staging_part
    assert "cannot reach MetaStudio" in staging_part
    prod_part = result.stdout[: result.stdout.index('Target "staging"')]
    assert f"({PROD_IDS[0]}) will be updated in-place" in prod_part
    assert "(1 could not be planned)" in result.stdout
    assert "Error: target staging could not be planned" in result.stderr
    assert "Traceback" not in result.stderr

    applied = repo.run("apply", "--auto-approve")
    assert applied.returncode == 1
    assert "1 target(s) could not be planned; nothing was sent to any target" in applied.stderr
    assert repo.puts(repo.prod) == []
    assert repo.name(repo.prod, PROD_IDS[0]) == "Prod 0"

    saved = repo.run("plan", "--out", "plan.json")
    assert saved.returncode == 1
    refused = repo.run("apply", "plan.json")
    assert refused.returncode == 1 and "could not be planned" in refused.stderr
    assert repo.puts(repo.prod) == []

    drift = repo.run("drift")
    assert drift.returncode == 1
    assert "Error: this target could not be checked (2 manifests not checked)" in drift.stdout
    assert 'Target "prod": 1 drifted' in drift.stdout


def test_each_target_uses_its_own_credentials(repo: Repo) -> None:
    wrong = {**repo.env, "PROD_HUAWEICLOUD_SDK_SK": "not-the-prod-secret"}
    result = repo.run("plan", env=wrong)
    assert result.returncode == 1
    prod_part = result.stdout[: result.stdout.index('Target "staging"')]
    assert "could not be planned" in prod_part
    assert "not-the-prod-secret" not in result.stdout + result.stderr
    assert "Plan: 1 to change, 1 unchanged." in result.stdout[result.stdout.index("staging") :]

    # Without its prefixed family prod does not borrow staging's plain-named keys.
    plain_only = {k: v for k, v in repo.env.items() if not k.startswith("PROD_")}
    repo.prod.clear_requests()
    missing = repo.run("plan", env=plain_only)
    assert missing.returncode == 1
    assert "no credentials: set PROD_HUAWEICLOUD_SDK_AK and PROD_HUAWEICLOUD_SDK_SK" in (
        missing.stdout
    )
    assert repo.prod.requests() == []
    only_staging = repo.run("--target", "staging", "plan", env=plain_only)
    assert only_staging.returncode == 0, only_staging.stderr


def test_single_target_flags_are_refused_for_several_targets(repo: Repo) -> None:
    result = repo.run("--endpoint", repo.prod.base_url, "plan")
    assert result.returncode == 1
    assert "--endpoint applies to one target" in result.stderr and "--target" in result.stderr
    narrowed = repo.run("--target", "prod", "--endpoint", repo.prod.base_url, "plan")
    assert narrowed.returncode == 0, narrowed.stderr


def test_safety_threshold_is_per_target(repo: Repo) -> None:
    many = [f"33333333-0000-4000-8000-{i:012d}" for i in range(12)]
    repo.prod.store.seed([_asset(a, f"Bulk {i}") for i, a in enumerate(many)], "p-prod")
    docs = [_manifest(a, f"Bulk {i}" if i >= 4 else "Changed", "prod") for i, a in enumerate(many)]
    (repo.root / "manifests" / "bulk.yaml").write_text("---\n".join(docs), encoding="utf-8")
    # prod: 5 of 15 change (33%) crosses; staging: 1 of 2 is under the minimum of managed assets.
    result = repo.run("apply", "--auto-approve")
    assert result.returncode == 1
    said = result.stdout + result.stderr
    assert said.count("5 of 15 managed assets (33%) would change") == 1  # said once, in the plan
    assert "Error: target prod: nothing was sent" in result.stderr
    assert "target staging" not in result.stderr
    assert repo.puts(repo.prod) == [] and repo.puts(repo.staging) == []
    forced = repo.run("apply", "--auto-approve", "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(repo.puts(repo.prod)) == 5 and len(repo.puts(repo.staging)) == 1
