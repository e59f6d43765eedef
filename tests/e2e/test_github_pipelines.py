"""The example GitHub workflows and the action they use: valid against GitHub's schemas, pinned,
and working: their reconciler steps run against the emulator and a local GitHub API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator.testing import RunningEmulator, run_emulator
from tests.e2e.forges import TOKEN, Forge, serve_forge
from tests.e2e.workflow_runner import (
    ACTION,
    OUR_ACTION,
    ROOT,
    WORKFLOWS,
    Runner,
    load,
    require_full_history,
)

pytestmark = pytest.mark.e2e

ASSET_ID = "93769b5a-c8c6-4692-9c95-53933a1f0c93"
LIVE = {
    "asset_id": ASSET_ID,
    "asset_name": "Sara Model",
    "asset_type": "HUMAN_MODEL_2D",
    "asset_state": "ACTIVED",
    "tags": ["NEWS"],
}
MANIFEST = (
    "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
    f"metadata: {{asset_id: {ASSET_ID}}}\n"
    "spec: {asset_name: Sara Model, tags: [NEWS, FEMALE]}\n"
)
READ = {"ak": "read-ak", "sk": "read-sk"}
WRITE = {"ak": "write-ak", "sk": "write-sk"}
PR = {"pull_request": {"number": 7}}


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run(
        [str(tool), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_workflows_and_action_match_githubs_schemas() -> None:
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert len(workflows) == 3
    done = check_jsonschema("vendor.github-workflows", *workflows)
    assert done.returncode == 0, done.stdout + done.stderr
    done = check_jsonschema("vendor.github-actions", ACTION)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("schema", "name", "text"),
    [
        ("vendor.github-workflows", "w.yml", "on: push\njobs:\n  p:\n    runs-on: x\n    stepz: 1"),
        ("vendor.gitlab-ci", ".gitlab-ci.yml", "plan:\n  stage: plan\n  scripts: [plan]\n"),
    ],
)
def test_the_schema_check_catches_a_broken_file(
    tmp_path: Path, schema: str, name: str, text: str
) -> None:
    """The schema checks above can fail: a misspelt key is refused, offline."""
    broken = tmp_path / name
    broken.write_text(text)
    assert check_jsonschema(schema, broken).returncode == 1


def all_uses() -> Iterator[tuple[str, str]]:
    for path in [*WORKFLOWS.glob("*.yml"), ACTION]:
        data = load(path)
        jobs = data.get("jobs", {}).values() if "jobs" in data else [data["runs"]]
        for job in jobs:
            for step in job["steps"]:
                if "uses" in step:
                    yield path.name, step["uses"]


def test_every_action_is_pinned_to_a_commit() -> None:
    found = list(all_uses())
    # Every workflow and the action itself use other actions, each workflow ours: a file whose
    # steps were not found (a renamed key, a moved directory) must not pass unchecked.
    files = {path.name for path in WORKFLOWS.glob("*.yml")}
    assert {where for where, _ in found} == {*files, ACTION.name}, found
    assert {where for where, uses in found if OUR_ACTION.match(uses)} == files, found
    for where, uses in found:
        name, _, ref = uses.partition("@")
        assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), (where, uses)
        if name == "your-org/reconciler":
            assert OUR_ACTION.match(uses)


def test_the_pinned_reconciler_commit_has_the_action() -> None:
    require_full_history()
    refs = {uses.partition("@")[2] for _, uses in all_uses() if OUR_ACTION.match(uses)}
    assert len(refs) == 1, "every example pins the same reconciler commit"
    [ref] = refs
    for path in ("action.yml", "action/run.py", ".pre-commit-hooks.yaml"):
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "cat-file", "-e", f"{ref}:{path}"], check=False
        )
        assert shown.returncode == 0, f"{ref} has no {path}"


def test_workflows_have_the_promised_shape() -> None:
    plan = load(WORKFLOWS / "reconciler-plan.yml")
    assert "pull_request" in plan["on"]
    assert plan["permissions"] == {"contents": "read", "pull-requests": "write"}
    apply = load(WORKFLOWS / "reconciler-apply.yml")
    assert apply["on"]["push"]["branches"] == ["main"]
    assert apply["concurrency"]["cancel-in-progress"] is False
    drift = load(WORKFLOWS / "reconciler-drift.yml")
    assert drift["permissions"]["issues"] == "write"
    assert drift["concurrency"]["group"] != apply["concurrency"]["group"]

    def steps(workflow: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
        job = next(iter(workflow["jobs"].values()))
        return [s for s in job["steps"] if s.get("uses", "").startswith(prefix)]

    # The state is shared through RECONCILER_STATE from a secret: no cache juggling.
    for workflow in (plan, apply, drift):
        assert not steps(workflow, "actions/cache")
    # Read-only credentials (and state role) for plan and drift; the write pair only in apply.
    for workflow in (plan, drift):
        [step] = steps(workflow, "your-org/reconciler@")
        assert "READ" in step["env"]["HUAWEICLOUD_SDK_AK"]
        assert step["env"]["RECONCILER_STATE"] == "${{ secrets.RECONCILER_STATE_READ }}"
    assert "WRITE" in apply["jobs"]["apply"]["env"]["HUAWEICLOUD_SDK_AK"]
    assert apply["jobs"]["apply"]["env"]["RECONCILER_STATE"] == "${{ secrets.RECONCILER_STATE }}"


@pytest.fixture
def forge() -> Iterator[Forge]:
    with serve_forge("github") as forge:
        yield forge


@pytest.fixture
def runner(tmp_path: Path, forge: Forge) -> Runner:
    repo = tmp_path / "repo"
    (repo / "manifests").mkdir(parents=True)
    (repo / "manifests" / "sara.yaml").write_text(MANIFEST)
    temp = tmp_path / "runner-temp"
    temp.mkdir()
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
            # Not defined: the jobs use the local SQLite file (one test below sets them).
            "RECONCILER_STATE": "",
            "RECONCILER_STATE_READ": "",
        },
        vars={"METASTUDIO_PROJECT_ID": "p-test", "METASTUDIO_REGION": "cn-north-4"},
    )
    runner.link_tool()
    return runner


def reach(runner: Runner, emu: RunningEmulator) -> None:
    """The runner's network: the region's endpoint is this emulator."""
    runner.network = {"HUAWEICLOUD_SDK_REGION_METASTUDIO_CN_NORTH_4": emu.base_url}


def test_plan_keeps_one_comment_per_pull_request(runner: Runner, forge: Forge) -> None:
    with run_emulator([LIVE], **READ) as emu:
        reach(runner, emu)
        [first] = runner.run_workflow("reconciler-plan.yml", "pull_request", PR)
        assert first.code == 0, first.stdout
        [comment] = forge.comments[7]
        assert comment["body"].startswith("<!-- reconciler:plan target=default -->\n## ")
        assert "FEMALE" in comment["body"] and "## reconciler plan" in comment["body"]
        assert first.outputs["exit-code"] == "0"

        # Another push: the same comment is updated, no second one appears.
        emu.store.patch(ASSET_ID, {"asset_name": "Sara (renamed in the console)"})
        [second] = runner.run_workflow("reconciler-plan.yml", "pull_request", PR)
        assert second.code == 0, second.stdout
        [comment] = forge.comments[7]
        assert "renamed in the console" in comment["body"]

        # A broken manifest: the errors replace the plan in that comment and the job fails.
        (runner.workdir / "manifests" / "sara.yaml").write_text(MANIFEST + "  asset_nmae: x\n")
        [broken] = runner.run_workflow("reconciler-plan.yml", "pull_request", PR)
        assert broken.code == 1
        [comment] = forge.comments[7]
        assert "reconciler plan failed" in comment["body"]
        assert "sara.yaml" in comment["body"]
        # Read-only credentials (the emulator accepts only the read pair); nothing was written.
        assert not [r for r in emu.requests() if r["method"] == "PUT"]


def test_apply_then_drift_keeps_one_issue(runner: Runner, forge: Forge, tmp_path: Path) -> None:
    db = tmp_path / "live.sqlite"
    with run_emulator([LIVE], db_path=db, **WRITE) as emu:
        reach(runner, emu)
        [apply] = runner.run_workflow("reconciler-apply.yml", "push", {})
        assert apply.code == 0, apply.stdout
        assert emu.store.get(ASSET_ID)["tags"] == ["NEWS", "FEMALE"]
        # Dispatched with force: the forced step runs instead (nothing left to change).
        [forced] = runner.run_workflow(
            "reconciler-apply.yml", "workflow_dispatch", {}, inputs={"force": True}
        )
        assert forced.code == 0 and "--force" in forced.stdout

    with run_emulator(None, db_path=db, **READ) as emu:
        reach(runner, emu)
        [in_sync] = runner.run_workflow("reconciler-drift.yml", "schedule", {})
        assert in_sync.code == 0 and in_sync.outputs["exit-code"] == "0", in_sync.stdout
        assert forge.issues == []

        emu.store.patch(ASSET_ID, {"asset_name": "Edited in the console"})
        for _ in range(2):  # the second run updates the issue the first one opened
            [drifted] = runner.run_workflow("reconciler-drift.yml", "schedule", {})
            assert drifted.code == 0 and drifted.outputs["exit-code"] == "2", drifted.stdout
        [issue] = forge.issues
        assert issue["state"] == "open" and issue["labels"] == ["reconciler-drift"]
        # The report's own marker is the action's: it is not repeated.
        assert issue["body"].startswith("<!-- reconciler:drift target=default -->\n## ")
        assert "Edited in the console" in issue["body"]
        assert "\n## reconciler drift report\n" in Path(drifted.outputs["report"]).read_text()
        assert forge.labels == {"reconciler-drift"}

        emu.store.patch(ASSET_ID, {"asset_name": "Sara Model"})
        [fixed] = runner.run_workflow("reconciler-drift.yml", "schedule", {})
        assert fixed.code == 0, fixed.stdout
        assert issue["state"] == "closed"
        assert forge.comments[issue["number"]][0]["body"].startswith("Live assets match")


def test_a_failed_drift_run_fails_the_job_and_leaves_the_issue(
    runner: Runner, forge: Forge
) -> None:
    runner.secrets["METASTUDIO_READ_SK"] = "wrong-secret"
    with run_emulator([LIVE], **READ) as emu:
        reach(runner, emu)
        [failed] = runner.run_workflow("reconciler-drift.yml", "schedule", {})
    assert failed.code == 1, failed.stdout
    assert forge.issues == [] and "wrong-secret" not in failed.stdout


def test_a_plan_on_another_runner_sees_what_apply_recorded_in_the_shared_state(
    runner: Runner, forge: Forge, tmp_path: Path, postgres_url: str
) -> None:
    """The secrets name one PostgreSQL state: the plan, in a fresh checkout on another runner,
    does not re-send the write-only field the apply workflow sent."""
    runner.secrets["RECONCILER_STATE"] = runner.secrets["RECONCILER_STATE_READ"] = postgres_url
    reviewed = MANIFEST.replace("spec: {", "spec: {review_config: {no_need_review: true}, ")
    (runner.workdir / "manifests" / "sara.yaml").write_text(reviewed)
    db = tmp_path / "live.sqlite"
    with run_emulator([LIVE], db_path=db, **WRITE) as emu:
        reach(runner, emu)
        [apply] = runner.run_workflow("reconciler-apply.yml", "push", {})
        assert apply.code == 0, apply.stdout
        [put] = [r for r in emu.requests() if r["method"] == "PUT"]
        assert put["body"]["review_config"] == {"no_need_review": True}
    assert not (runner.workdir / ".reconciler").exists()  # nothing local to keep

    fresh = tmp_path / "another-runner"
    (fresh / "manifests").mkdir(parents=True)
    (fresh / "manifests" / "sara.yaml").write_text(reviewed)
    runner.workdir = fresh
    with run_emulator(None, db_path=db, **READ) as emu:
        reach(runner, emu)
        [plan] = runner.run_workflow("reconciler-plan.yml", "pull_request", PR)
        assert plan.code == 0, plan.stdout
        [comment] = forge.comments[7]
        assert "No changes" in comment["body"], comment["body"]
        assert "will be sent" not in comment["body"]

        # Without the secret, that runner has only its own empty file: the value is re-sent.
        runner.secrets["RECONCILER_STATE_READ"] = ""
        [alone] = runner.run_workflow("reconciler-plan.yml", "pull_request", PR)
        assert alone.code == 0, alone.stdout
        [comment] = forge.comments[7]
        assert "review_config" in comment["body"] and "will be sent" in comment["body"]
