"""The example GitLab pipeline: valid against GitLab's schema, and its job scripts, run unchanged
by bash as a runner would, work against the emulator and a local GitLab API, with the
credentials each job is meant to have, whatever project variables exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator.testing import run_emulator
from tests.e2e.forges import TOKEN, Forge, serve_forge
from tests.e2e.test_github_pipelines import ASSET_ID, LIVE, MANIFEST, READ, WRITE, check_jsonschema
from tests.e2e.workflow_runner import ROOT, load

pytestmark = pytest.mark.e2e

GITLAB = ROOT / "docs" / "examples" / "gitlab" / ".gitlab-ci.yml"
# Project variables (Settings > CI/CD > Variables) as the header of the file asks for them.
PROJECT_VARIABLES = {
    "METASTUDIO_READ_AK": READ["ak"],
    "METASTUDIO_READ_SK": READ["sk"],
    "METASTUDIO_PROJECT_ID": "p-test",
    "METASTUDIO_REGION": "cn-north-4",
    "RECONCILER_GITLAB_TOKEN": TOKEN,
}
# Protected: present on main (apply, and the scheduled drift job if scoping were forgotten).
PROTECTED = {"METASTUDIO_WRITE_AK": WRITE["ak"], "METASTUDIO_WRITE_SK": WRITE["sk"]}
# What the old layout did, and a project still might: write credentials under the names the
# tool reads. A project variable overrides a job's `variables:`; the jobs must not use them.
MISNAMED = {"HUAWEICLOUD_SDK_AK": WRITE["ak"], "HUAWEICLOUD_SDK_SK": WRITE["sk"]}


def pipeline() -> dict[str, Any]:
    loaded: dict[str, Any] = load(GITLAB)
    return loaded


def test_the_pipeline_matches_gitlabs_schema() -> None:
    done = check_jsonschema("vendor.gitlab-ci", GITLAB)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_pipeline_has_the_promised_shape() -> None:
    p = pipeline()
    assert p["apply"]["resource_group"] and p["apply"]["interruptible"] is False
    assert p["apply"]["environment"] == "production"
    assert p["apply-force"]["extends"] == "apply"
    # The state is shared through RECONCILER_STATE: no job caches it.
    for name, job in p.items():
        if isinstance(job, dict):
            for cache in job.get("cache", []):
                assert ".reconciler/" not in cache["paths"], name
    # The read jobs use the read-only role, whatever RECONCILER_STATE the project defines.
    for name in ("plan", "drift"):
        assert 'export RECONCILER_STATE="$RECONCILER_STATE_READ"' in p[name]["script"], name
    assert "schedule" in p["drift"]["rules"][0]["if"]
    assert "merge_request_event" in p["plan"]["rules"][0]["if"]
    # No release on PyPI yet: a git URL pinned to a commit, not a version that does not exist.
    package = p["variables"]["RECONCILER_PACKAGE"]
    assert re.fullmatch(r"metastudio-reconciler @ git\+https://.+\.git@<commit sha>", package)
    assert "==" not in package
    # Credentials never come from job `variables:`, which project variables would override.
    for name, job in p.items():
        if isinstance(job, dict):
            assert not set(job.get("variables", {})) & {*MISNAMED, "HW_ACCESS_KEY"}, name


def test_every_variable_the_pipeline_reads_is_documented() -> None:
    text = GITLAB.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", text))
    predefined = {n for n in used if n.startswith("CI_")}
    defined_here = set(pipeline()["variables"]) | {"HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"}
    from_project = used - predefined - defined_here
    assert from_project >= {"METASTUDIO_READ_AK", "METASTUDIO_WRITE_AK", "RECONCILER_DRIFT"}
    for name in from_project:
        assert name in header, f"{name} is read but not described in the header"
    docs = (ROOT / "docs" / "gitops.md").read_text()
    for switch in (
        "RECONCILER_DRIFT",
        "environment scope",
        "Protected",
        "Masked",
        "resource_group",
        "interruptible",
        "Auto-cancel redundant pipelines",
        "Reporter",
    ):
        assert switch in docs, f"docs/gitops.md does not explain {switch}"


class GitLabJob:
    """One job of the pipeline, run by bash in a repository folder with GitLab's variables."""

    def __init__(self, workdir: Path, api_url: str, endpoint: str) -> None:
        self.workdir = workdir
        self.api_url = api_url
        self.endpoint = endpoint

    def script(self, name: str) -> str:
        p = pipeline()
        job = p[name]
        parents = [p[job["extends"]]] if "extends" in job else []
        script = job.get("script") or next(j["script"] for j in parents if "script" in j)
        before = job.get("before_script", p["default"]["before_script"])
        # The tool is already installed here; everything else runs as written.
        before = [line for line in before if not line.startswith("pip install")]
        return "\n".join([*before, *script])

    def run(self, name: str, variables: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        p = pipeline()
        yaml_vars = {**p["variables"], **p[name].get("variables", {})}
        project = dict(variables)
        env = {k: v for k, v in os.environ.items() if not re.match(r"(HUAWEICLOUD_SDK_|HW_)", k)}
        env.update(
            {
                "PATH": f"{Path(sys.executable).parent}:{env['PATH']}",
                "CI_API_V4_URL": f"{self.api_url}/api/v4",
                "CI_PROJECT_ID": "42",
                "CI_MERGE_REQUEST_IID": "7",
                "CI_PROJECT_DIR": str(self.workdir),
                # The runner's network: the region's endpoint is the emulator.
                "HUAWEICLOUD_SDK_REGION_METASTUDIO_CN_NORTH_4": self.endpoint,
            }
        )
        # GitLab expands $NAME in variable values; project variables take precedence.
        for key, value in yaml_vars.items():
            env[key] = re.sub(r"\$(\w+)", lambda m: {**env, **project}.get(m[1], ""), str(value))
        env.update(project)
        return subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", self.script(name)],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def forge() -> Iterator[Forge]:
    with serve_forge("gitlab") as forge:
        yield forge


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "repo" / "manifests").mkdir(parents=True)
    (tmp_path / "repo" / "manifests" / "sara.yaml").write_text(MANIFEST)
    return tmp_path / "repo"


def test_merge_request_keeps_one_plan_note(repo: Path, forge: Forge) -> None:
    with run_emulator([LIVE], **READ) as emu:
        job = GitLabJob(repo, forge.base_url, emu.base_url)
        done = job.run("validate", PROJECT_VARIABLES)
        assert done.returncode == 0, done.stderr
        # An MR from a branch: no protected variables, but a misnamed project variable.
        for push in range(2):
            done = job.run("plan", {**PROJECT_VARIABLES, **MISNAMED})
            assert done.returncode == 0, done.stdout + done.stderr
            [note] = forge.comments[7]
            assert note["body"].startswith("<!-- reconciler:plan target=default -->\n")
            assert "FEMALE" in note["body"]
            if push == 0:
                emu.store.patch(ASSET_ID, {"asset_name": "Renamed in the console"})
        assert "Renamed in the console" in note["body"]

        (repo / "manifests" / "sara.yaml").write_text(MANIFEST + "  asset_nmae: x\n")
        done = job.run("plan", PROJECT_VARIABLES)
        assert done.returncode == 1
        [note] = forge.comments[7]
        assert "reconciler plan failed" in note["body"] and "sara.yaml" in note["body"]
        assert not [r for r in emu.requests() if r["method"] == "PUT"]


def test_apply_writes_and_drift_reads_whatever_variables_exist(
    repo: Path, forge: Forge, tmp_path: Path
) -> None:
    db = tmp_path / "live.sqlite"
    on_main = {**PROJECT_VARIABLES, **PROTECTED, **MISNAMED}
    with run_emulator([LIVE], db_path=db, **WRITE) as emu:
        job = GitLabJob(repo, forge.base_url, emu.base_url)
        done = job.run("apply", on_main)
        assert done.returncode == 0, done.stdout + done.stderr
        assert emu.store.get(ASSET_ID)["tags"] == ["NEWS", "FEMALE"]
        done = job.run("apply-force", on_main)
        assert done.returncode == 0, done.stdout + done.stderr

    # The scheduled drift job runs on main, where the write pair exists (here even under the
    # tool's own variable names): it must still talk to the service with the read pair.
    schedule = {**on_main, "RECONCILER_DRIFT": "1"}
    with run_emulator(None, db_path=db, **READ) as emu:
        job = GitLabJob(repo, forge.base_url, emu.base_url)
        done = job.run("drift", schedule)
        assert done.returncode == 0, done.stdout + done.stderr
        assert forge.issues == []

        emu.store.patch(ASSET_ID, {"asset_name": "Edited in the console"})
        for _ in range(2):
            done = job.run("drift", schedule)
            assert done.returncode == 0, done.stdout + done.stderr
        [issue] = forge.issues
        assert issue["state"] == "opened" and issue["labels"] == ["reconciler-drift"]
        assert "Edited in the console" in issue["description"]

        emu.store.patch(ASSET_ID, {"asset_name": "Sara Model"})
        done = job.run("drift", schedule)
        assert done.returncode == 0, done.stdout + done.stderr
        assert issue["state"] == "closed"
