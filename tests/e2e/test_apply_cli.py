"""``reconciler apply`` as a user runs it: a real subprocess against the emulator on 127.0.0.1.

Covers the confirmation prompt (yes / anything else / no terminal), saved plans (applied as
saved, refused when stale or made for another project), the safety threshold, and Ctrl-C.
What was sent is always read from the emulator's request log.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import samples
from reconciler.emulator.samples import asset_id
from reconciler.emulator.testing import run_emulator
from tests.e2e.cli_runner import Cli

pytestmark = pytest.mark.e2e


def live_asset(i: int) -> dict[str, Any]:
    return samples.image(i, asset_description="live", tags=["NEWS"], asset_order=i)


def write_manifests(directory: Path, names: dict[int, str]) -> Path:
    """One manifest per asset, managing only asset_name."""
    directory.mkdir(parents=True, exist_ok=True)
    docs = [
        "apiVersion: reconciler.metastudio/v1\n"
        "kind: DigitalAsset\n"
        "metadata:\n"
        f"  asset_id: {asset_id(i)}\n"
        "spec:\n"
        f"  asset_name: {name}\n"
        for i, name in names.items()
    ]
    (directory / "assets.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return directory


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    with run_emulator([live_asset(i) for i in range(4)]) as emu:
        yield Cli(emu, tmp_path)


def test_auto_approve_applies_planned_bodies_then_a_rerun_has_nothing_to_do(cli: Cli) -> None:
    write_manifests(cli.cwd / "manifests", {0: "Renamed 0", 1: "Image 1", 2: "Renamed 2"})
    result = cli.run("apply", "--auto-approve")
    assert result.returncode == 0, result.stderr
    assert f"{asset_id(0)}: updated (Renamed 0)" in result.stdout
    assert f"{asset_id(2)}: updated (Renamed 2)" in result.stdout
    assert result.stdout.rstrip().endswith("Apply complete! 2 changed, 0 failed.")
    assert sorted(cli.puts()) == [
        (asset_id(0), {"asset_name": "Renamed 0"}),
        (asset_id(2), {"asset_name": "Renamed 2"}),
    ]
    assert "Traceback" not in result.stderr

    cli.emu.clear_requests()
    again = cli.run("apply", "--auto-approve", "manifests")
    assert again.returncode == 0
    assert "No changes. Live assets match the manifests." in again.stdout
    assert cli.puts() == []


def test_without_a_terminal_or_auto_approve_nothing_is_sent(cli: Cli) -> None:
    write_manifests(cli.cwd / "manifests", {0: "Renamed 0"})
    result = cli.run("apply")
    assert result.returncode == 1
    assert "stdin is not a terminal" in result.stderr and "--auto-approve" in result.stderr
    assert "reconciler plan --out" in result.stderr
    assert cli.puts() == []
    assert "Traceback" not in result.stderr


def test_prompt_yes_applies(cli: Cli) -> None:
    write_manifests(cli.cwd / "manifests", {1: "Typed yes"})
    result = cli.run_on_terminal("apply", answer="yes")
    assert result.returncode == 0, result.stderr
    assert "Only 'yes' will be accepted to approve." in result.stderr
    assert cli.puts() == [(asset_id(1), {"asset_name": "Typed yes"})]
    assert "Apply complete! 1 changed, 0 failed." in result.stdout


@pytest.mark.parametrize("answer", ["no", "y", "YES", ""])
def test_prompt_anything_but_yes_cancels(cli: Cli, answer: str) -> None:
    write_manifests(cli.cwd / "manifests", {1: "Not approved"})
    result = cli.run_on_terminal("apply", answer=answer)
    assert result.returncode == 1
    assert "Apply cancelled." in result.stderr
    assert cli.puts() == []


def test_saved_plan_is_applied_as_saved(cli: Cli) -> None:
    write_manifests(cli.cwd / "manifests", {0: "From plan", 3: "Image 3"})
    planned = cli.run("plan", "--out", "tfplan")
    assert planned.returncode == 0, planned.stderr
    # Editing the manifests afterwards does not change what the saved plan sends.
    write_manifests(cli.cwd / "manifests", {0: "Edited later", 3: "Image 3"})
    cli.emu.clear_requests()
    result = cli.run("apply", "tfplan")  # no prompt: the plan was reviewed when it was made
    assert result.returncode == 0, result.stderr
    assert cli.puts() == [(asset_id(0), {"asset_name": "From plan"})]
    assert "Apply complete! 1 changed, 0 failed." in result.stdout


def test_stale_saved_plan_is_refused_and_nothing_is_sent(cli: Cli) -> None:
    write_manifests(cli.cwd / "manifests", {0: "From plan", 3: "Image 3"})
    assert cli.run("plan", "--out", "tfplan").returncode == 0
    cli.emu.store.patch(asset_id(3), {"asset_description": "edited in the console"})
    cli.emu.clear_requests()
    result = cli.run("apply", "tfplan")
    assert result.returncode == 1
    assert "stale" in result.stderr and asset_id(3) in result.stderr
    assert asset_id(0) not in result.stderr  # only the changed asset is listed
    assert cli.puts() == []


def test_saved_plan_for_another_project_is_refused(cli: Cli) -> None:
    write_manifests(cli.cwd / "manifests", {0: "From plan"})
    assert cli.run("plan", "--out", "tfplan").returncode == 0
    cli.emu.clear_requests()
    result = cli.run("apply", "tfplan", project_id="another-project")
    assert result.returncode == 1
    assert "another-project" in result.stderr and cli.emu.project_id in result.stderr
    assert cli.emu.requests() == []


def test_safety_threshold_needs_force(tmp_path: Path) -> None:
    with run_emulator([live_asset(i) for i in range(12)]) as emu:
        cli = Cli(emu, tmp_path)
        names = {i: (f"Bulk {i}" if i < 4 else f"Image {i}") for i in range(12)}
        write_manifests(tmp_path / "manifests", names)  # 4 of 12 = 33% > 30%
        refused = cli.run("apply", "--auto-approve")
        assert refused.returncode == 1
        said = refused.stdout + refused.stderr
        assert said.count("4 of 12 managed assets (33%)") == 1  # the numbers, once
        assert "nothing was sent" in refused.stderr and "--force" in refused.stderr
        assert cli.puts() == []

        forced = cli.run("apply", "--auto-approve", "--force")
        assert forced.returncode == 0, forced.stderr
        assert (forced.stdout + forced.stderr).count("4 of 12 managed assets (33%)") == 1
        assert len(cli.puts()) == 4


def test_ctrl_c_finishes_in_flight_prints_summary_exits_130_and_rerun_converges(
    tmp_path: Path,
) -> None:
    with run_emulator([live_asset(i) for i in range(12)]) as emu:
        cli = Cli(emu, tmp_path)
        write_manifests(tmp_path / "manifests", {i: f"Slow {i}" for i in range(12)})
        emu.set_faults(latency_ms=300)
        proc = subprocess.Popen(
            cli.argv("apply", "--auto-approve", "--force", "--parallelism", "2"),
            cwd=tmp_path,
            env=cli.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not cli.puts() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cli.puts(), "apply never sent a PUT"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Apply interrupted:" in out and "not started" in out
        assert "Traceback" not in err
        sent = len(cli.puts())
        assert 0 < sent < 12
        assert out.count(": updated (") == sent  # every request in flight finished and is listed

        emu.set_faults(latency_ms=0)
        rerun = cli.run("apply", "--auto-approve", "--force")
        assert rerun.returncode == 0, rerun.stderr
        assert f"Apply complete! {12 - sent} changed, 0 failed." in rerun.stdout
        final = cli.run("plan", "--detailed-exitcode")
        assert final.returncode == 0, final.stdout
