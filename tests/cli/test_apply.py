"""``reconciler apply`` as a person at a terminal meets it: the prompt says where it writes,
progress shows on stderr, targeting narrows the run and says so, the threshold is configurable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_process import DemoProject, PtyProcess, fresh_project

from reconciler.emulator.demo_seed import AVATAR_ID, VOICE_ID

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def puts(project: DemoProject) -> list[str]:
    return [
        str(r["path"]).rsplit("/", 1)[1]
        for r in project.emulator.requests()
        if r.get("method") == "PUT"
    ]


def test_the_prompt_names_target_project_endpoint_and_changes(tmp_path: Path) -> None:
    with fresh_project(tmp_path) as project:
        session = PtyProcess(project, "apply", "manifests")
        screen = session.read_until("Enter a value: ")
        question = ANSI.sub("", screen).split("Do you want to perform these actions?", 1)[1]
        changes = int(re.search(r"Plan: (\d+) to change", ANSI.sub("", screen)).group(1))
        assert f"reconciler will send {changes} changes described above" in question
        assert "target:   default" in question
        assert "project:  p-test" in question
        assert f"endpoint: {project.emulator.base_url}" in question
        assert puts(project) == []  # nothing before the answer
        session.type("yes")
        code, _ = session.finish()
        assert code == 0, session.screen
        assert len(puts(project)) == changes
        assert "Apply complete!" in session.screen


def test_anything_but_yes_cancels(tmp_path: Path) -> None:
    with fresh_project(tmp_path) as project:
        session = PtyProcess(project, "apply")
        session.read_until("Enter a value: ")
        session.type("y")
        code, _ = session.finish()
        assert code == 1
        assert "Apply cancelled." in session.screen
        assert puts(project) == []


def test_progress_is_a_live_line_on_a_terminal_only(tmp_path: Path) -> None:
    with fresh_project(tmp_path) as project:
        out = tmp_path / "stdout.txt"
        session = PtyProcess(
            project, "apply", "--auto-approve", "--parallelism", "1", stdout_file=out
        )
        code, stdout = session.finish()
        assert code == 0, session.screen
        changes = len(puts(project))
        # stderr (the terminal) shows the counted stages; stdout (a file) shows none of it.
        assert re.search(r"\[5/5\] reading live assets, \d+\.\d s", session.screen)
        assert f"[{changes}/{changes}] applied" in session.screen
        assert f"\r[0/{changes}] applied" in session.screen  # redrawn in place
        assert "[" not in "".join(line[:1] for line in stdout.splitlines())
        assert "updated (" in stdout and "Apply complete!" in stdout
        # Without a terminal: no progress at all.
        plain = project.run("plan")
        assert "reading live assets" not in plain.stderr and "\r" not in plain.stderr


def test_targeted_apply_changes_only_the_chosen_assets_and_warns(tmp_path: Path) -> None:
    with fresh_project(tmp_path) as project:
        result = project.run("apply", "--asset", AVATAR_ID, "--auto-approve")
        assert result.returncode == 0, result.stderr
        assert puts(project) == [AVATAR_ID]
        assert "targeting is in effect (--asset): this run covers 1 of 5 manifests" in (
            result.stdout
        )
        by_label = project.run("plan", "--selector", "team=marketing", "--asset", VOICE_ID)
        assert "Warning: targeting is in effect (--asset, --selector): this run covers 1 of" in (
            by_label.stdout
        )
        assert project.run("plan", "--out", "tfplan").returncode == 0
        saved = project.run("apply", "tfplan", "--asset", VOICE_ID)
        assert saved.returncode != 0 and "not a saved plan file" in saved.stderr


def _many(n: int) -> list[dict[str, object]]:
    return [
        {
            "asset_id": f"00000000-0000-4000-8000-{i:012d}",
            "asset_name": f"Image {i}",
            "asset_type": "IMAGE",
            "asset_state": "ACTIVED",
        }
        for i in range(n)
    ]


def _manifests(root: Path, n: int, renamed: int) -> None:
    folder = root / "many"
    folder.mkdir()
    for i in range(n):
        name = f"Renamed {i}" if i < renamed else f"Image {i}"
        (folder / f"a{i}.yaml").write_text(
            "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\nmetadata:\n"
            f"  asset_id: 00000000-0000-4000-8000-{i:012d}\nspec:\n  asset_name: {name}\n",
            encoding="utf-8",
        )


def test_the_safety_threshold_comes_from_the_file_or_the_flag(tmp_path: Path) -> None:
    with fresh_project(tmp_path, _many(20)) as project:
        _manifests(tmp_path, 20, renamed=8)  # 40% would change
        refused = project.run("apply", "many", "--auto-approve")
        assert refused.returncode == 1 and puts(project) == []
        said = refused.stdout + refused.stderr
        assert said.count("8 of 20 managed assets (40%) would change, more than the 30%") == 1
        config = tmp_path / "reconciler.yaml"
        config.write_text("safety: {max_change_percent: 50}\n", encoding="utf-8")
        planned = project.run("plan", "many")
        assert "safety threshold" not in planned.stdout
        stricter = project.run("plan", "many", "--max-change-percent", "10")
        assert "more than the 10% safety threshold" in stricter.stdout
        config.write_text("safety: {max_change_percent: 150}\n", encoding="utf-8")
        bad = project.run("plan", "many")
        assert bad.returncode == 1
        assert (
            "reconciler.yaml: safety.max_change_percent: expected a percentage from 0 to 100"
            in (bad.stderr)
        )
        config.write_text("safety: {min_assets: 21}\n", encoding="utf-8")
        applied = project.run("apply", "many", "--auto-approve")
        assert applied.returncode == 0, applied.stderr
        assert len(puts(project)) == 8


def test_retries_are_summarised_at_the_default_verbosity(tmp_path: Path) -> None:
    with fresh_project(tmp_path, _many(300)) as project:
        _manifests(tmp_path, 300, renamed=0)
        project.emulator.set_faults(fail_rate=0.4, drop_rate=0.2)  # reproducible: seeded
        result_env = project.env(HW_MAX_RETRIES="20")
        result = project.run("plan", "many", env=result_env)
        assert result.returncode == 0, result.stderr
        line = re.search(
            r"^Warning: retried (\d+) requests?(?: (\d+) times(?: in all)?)?: (.+)$",
            result.stderr,
            re.M,
        )
        assert line is not None, result.stderr
        kinds = dict((kind, int(n)) for n, kind in re.findall(r"(\d+) x ([^,]+)", line.group(3)))
        retries = int(line.group(2) or line.group(1))  # requests, and retries when they differ
        assert sum(kinds.values()) == retries >= int(line.group(1))
        served = [r for r in project.emulator.requests() if r.get("status") == 500]
        assert kinds["HTTP 500"] == len(served) > 0
        assert set(kinds) - {"HTTP 500"} <= {"connection closed", "connection reset"}
        assert result.stderr.count("Warning: retried") == 1  # one line for the kind
        logged = project.run("plan", "many", "--log-format", "json", env=result_env)
        summary = next(
            json.loads(entry)
            for entry in logged.stderr.splitlines()
            if '"message": "retried' in entry
        )
        assert summary["level"] == "warning" and summary["target"] == "default"
        assert isinstance(summary["retried"], dict) and summary["retried"]["HTTP 500"] > 0
        project.emulator.set_faults(fail_rate=0, drop_rate=0)
        quiet = project.run("plan", "many")
        assert "retried" not in quiet.stderr  # the same run without faults says nothing


def test_the_prompt_names_each_target_of_a_run_over_several() -> None:
    from reconciler.cli.apply import prompt
    from reconciler.engine.plan import Action, AssetPlan, Plan, PlanSet

    def plan(target: str, changes: int) -> Plan:
        rows = [AssetPlan(asset_id=f"{target}-{i}", action=Action.UPDATE) for i in range(changes)]
        return Plan(rows, target=target, project_id=f"p-{target}", endpoint=f"https://{target}")

    text = prompt(PlanSet([plan("prod", 3), plan("sg", 1), plan("idle", 0)]))
    assert "reconciler will send 4 changes described above to MetaStudio:" in text
    assert "    target prod  3 changes to project p-prod at https://prod\n" in text
    assert "    target sg    1 change to project p-sg at https://sg\n" in text
    assert "idle" not in text
