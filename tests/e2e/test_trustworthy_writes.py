"""What plan shows is exactly what apply changes: the six ways a service that behaves the way the
real MetaStudio can broke that promise, each reproduced end to end.

Every test runs ``reconciler`` as a real process against the emulator on a loopback socket, then
asserts the exact PUT bodies from the emulator's request log and the final live state in its
store.  The emulator plays the service's other readings of the reference: unknown block fields
(a newer service), summary list rows (``list_omit``), a short or stale PUT answer
(``put_answer``), and console edits made while apply runs (``edit_on_put``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator.samples import asset_id as aid
from reconciler.emulator.testing import RunningEmulator, run_emulator
from tests.e2e.cli_runner import Cli

pytestmark = pytest.mark.e2e


def avatar(i: int, **block: Any) -> dict[str, Any]:
    """A 2D avatar whose block carries two fields this tool's schema does not know."""
    return {
        "asset_id": aid(i),
        "asset_name": f"Avatar {i}",
        "asset_description": "live",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "tags": ["NEWS"],
        "asset_extra_meta": {
            "human_model_2d_meta": {
                "support_live": False,
                "model_resolution": "1080P",
                "model_version": "V3",
                "device_names": ["studio-a"],
                "render_engine": "UE",  # unknown to the schema: added by a newer service
                "lip_sync": {"mode": "fast", "level": 2},  # unknown, nested
                **block,
            }
        },
        "system_properties": [
            {"key": "CREATED_BY_PLATFORM", "value": "Yes"},
            {"key": "BACKGROUND_IMG", "value": "Yes"},
        ],
    }


def manifest(i: int, spec: str) -> str:
    return (
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
        f"metadata:\n  asset_id: {aid(i)}\nspec:\n" + textwrap.indent(textwrap.dedent(spec), "  ")
    )


def write(cli: Cli, *docs: str) -> None:
    directory = cli.cwd / "manifests"
    directory.mkdir(exist_ok=True)
    (directory / "assets.yaml").write_text("---\n".join(docs), encoding="utf-8")


SUPPORT_LIVE = "asset_extra_meta:\n  human_model_2d_meta:\n    support_live: true\n"


def block(emu: RunningEmulator, i: int) -> dict[str, Any]:
    stored = emu.store.get(aid(i))
    assert stored is not None
    meta: dict[str, Any] = stored["asset_extra_meta"]["human_model_2d_meta"]
    return meta


def gets(emu: RunningEmulator) -> list[str]:
    """``list`` or the asset id of each GET, in order."""
    return [
        "list" if e["path"] == emu.assets_path() else e["path"].rsplit("/", 1)[1]
        for e in emu.requests()
        if e["method"] == "GET"
    ]


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    with run_emulator([avatar(1), avatar(2), avatar(3)]) as emu:
        yield Cli(emu, tmp_path)


# --- 1. fields this tool does not know are kept ---------------------------------------------


def test_a_changed_block_keeps_the_fields_the_schema_does_not_know(cli: Cli) -> None:
    write(cli, manifest(1, SUPPORT_LIVE))
    planned = cli.run("plan")
    assert planned.returncode == 0, planned.stderr
    assert "~ support_live" in planned.stdout and "false -> true" in planned.stdout

    result = cli.run("apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    assert cli.puts() == [
        (
            aid(1),
            {
                "asset_extra_meta": {
                    "human_model_2d_meta": {
                        "support_live": True,
                        "model_resolution": "1080P",
                        "model_version": "V3",
                        "device_names": ["studio-a"],
                        "render_engine": "UE",
                        "lip_sync": {"mode": "fast", "level": 2},
                    }
                }
            },
        )
    ]
    assert block(cli.emu, 1) == {**avatar(1)["asset_extra_meta"]["human_model_2d_meta"]} | {
        "support_live": True
    }


# --- 2. summary list rows never become destructive writes ------------------------------------


def test_a_summary_list_row_is_read_whole_before_it_is_diffed(tmp_path: Path) -> None:
    with run_emulator([avatar(1), avatar(2)], list_omit=["asset_extra_meta"]) as emu:
        cli = Cli(emu, tmp_path)
        write(cli, manifest(1, SUPPORT_LIVE), manifest(2, "asset_name: Avatar 2\n"))
        planned = cli.run("plan")
        assert planned.returncode == 0, planned.stderr
        # An update of one leaf, not a whole block added from the manifest alone.
        assert "~ support_live" in planned.stdout and "false -> true" in planned.stdout
        assert "+ asset_extra_meta" not in planned.stdout
        # The row of asset 1 lacked the block it manages: ShowAsset; asset 2 manages no block.
        assert gets(emu) == ["list", aid(1)]

        emu.clear_requests()
        result = cli.run("apply", "--auto-approve")
        assert result.returncode == 0, result.stdout + result.stderr
        [(asset, body)] = cli.puts()
        assert asset == aid(1)
        assert body["asset_extra_meta"]["human_model_2d_meta"] == {
            **avatar(1)["asset_extra_meta"]["human_model_2d_meta"],
            "support_live": True,
        }
        # Planned from ShowAsset, so read again with ShowAsset right before the write.
        assert gets(emu) == ["list", aid(1), aid(1)]
        assert block(emu, 1)["model_version"] == "V3" and block(emu, 1)["render_engine"] == "UE"


# --- 3. edits made while apply runs are not reverted -----------------------------------------


def _two_partial_managers(cli: Cli) -> None:
    write(cli, manifest(1, "asset_name: Renamed 1\n"), manifest(2, SUPPORT_LIVE))


def test_an_edit_made_during_apply_is_not_overwritten(cli: Cli) -> None:
    _two_partial_managers(cli)
    # Someone changes asset 2 in the console right after asset 1 was written.
    cli.emu.edit_on_put(
        aid(2), {"asset_extra_meta.human_model_2d_meta.model_version": "V3_3"}, after=aid(1)
    )
    result = cli.run("apply", "--auto-approve", "--parallelism", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{aid(1)}: updated" in result.stdout
    assert f"{aid(2)}: CHANGED SINCE PLAN" in result.stdout
    assert "asset_extra_meta.human_model_2d_meta changed" in result.stdout
    assert "1 changed since plan (not sent)" in result.stdout
    assert cli.puts() == [(aid(1), {"asset_name": "Renamed 1"})]
    assert block(cli.emu, 2)["model_version"] == "V3_3"  # the edit survives
    assert block(cli.emu, 2)["support_live"] is False  # and nothing was sent for asset 2


def test_a_saved_plan_also_reads_before_each_write(cli: Cli) -> None:
    _two_partial_managers(cli)
    assert cli.run("plan", "--out", "tfplan").returncode == 0
    cli.emu.edit_on_put(aid(2), {"asset_extra_meta.human_model_2d_meta.is_flexus": True})
    cli.emu.clear_requests()
    result = cli.run("apply", "tfplan", "--parallelism", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{aid(2)}: CHANGED SINCE PLAN" in result.stdout
    assert cli.puts() == [(aid(1), {"asset_name": "Renamed 1"})]
    assert block(cli.emu, 2)["is_flexus"] is True and block(cli.emu, 2)["support_live"] is False


def test_an_edit_made_while_the_prompt_waits_is_not_overwritten(cli: Cli) -> None:
    _two_partial_managers(cli)

    def console_edit() -> None:
        cli.emu.store.patch(aid(2), {"asset_extra_meta.human_model_2d_meta.model_version": "V2"})

    result = cli.run_on_terminal(
        "apply", wait_for="Enter a value:", then=console_edit, answer="yes"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{aid(2)}: CHANGED SINCE PLAN" in result.stdout
    assert cli.puts() == [(aid(1), {"asset_name": "Renamed 1"})]
    assert block(cli.emu, 2)["model_version"] == "V2"


# --- 4. a short PUT answer is verified by reading back ---------------------------------------


@pytest.mark.parametrize("answer", ["short", "stale"])
def test_a_put_answer_that_does_not_show_the_values_is_verified_by_reading_back(
    tmp_path: Path, answer: str
) -> None:
    with run_emulator([avatar(1)], put_answer=answer) as emu:
        cli = Cli(emu, tmp_path)
        write(cli, manifest(1, "asset_name: Renamed 1\n" + SUPPORT_LIVE))
        result = cli.run("apply", "--auto-approve")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{aid(1)}: updated" in result.stdout and "NOT CONVERGED" not in result.stdout
        assert "Apply complete! 1 changed, 0 failed." in result.stdout
        [(_, body)] = cli.puts()
        assert body["asset_name"] == "Renamed 1"
        # list (plan), list (fresh read), then the read-back after the PUT.
        assert gets(emu) == ["list", "list", aid(1)]
        stored = emu.store.get(aid(1))
        assert stored is not None and stored["asset_name"] == "Renamed 1"


def test_a_field_the_service_really_did_not_take_is_still_not_converged(tmp_path: Path) -> None:
    with run_emulator([avatar(1)], put_answer="short") as emu:
        cli = Cli(emu, tmp_path)
        write(cli, manifest(1, "asset_order: 3\n"))
        # The service puts the old value back right after storing the PUT: it did not take it.
        emu.edit_on_put(aid(1), {"asset_order": 0}, after=aid(1))
        result = cli.run("apply", "--auto-approve")
        assert result.returncode == 1
        assert (
            "NOT CONVERGED" in result.stdout and "asset_order = 3 (service has 0)" in result.stdout
        )
        assert cli.puts() == [(aid(1), {"asset_order": 3})]
        # The row lacks asset_order, so: list and ShowAsset (plan), ShowAsset (fresh read),
        # ShowAsset (read-back).
        assert gets(emu) == ["list", aid(1), aid(1), aid(1)]


# --- 5. system properties are managed per key ------------------------------------------------


def test_system_properties_the_manifest_does_not_name_are_left_alone(cli: Cli) -> None:
    write(
        cli,
        manifest(1, 'system_properties:\n  MATERIAL_IMG: "Yes"\n  BACKGROUND_IMG: null\n'),
    )
    result = cli.run("apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    assert cli.puts() == [
        (
            aid(1),
            {
                "system_properties": [
                    {"action": "ADD", "key": "MATERIAL_IMG", "value": "Yes"},
                    {"action": "DELETE", "key": "BACKGROUND_IMG", "value": "Yes"},
                ]
            },
        )
    ]
    stored = cli.emu.store.get(aid(1))
    assert stored is not None
    assert {p["key"]: p["value"] for p in stored["system_properties"]} == {
        "CREATED_BY_PLATFORM": "Yes",  # set by the platform, not named: kept
        "MATERIAL_IMG": "Yes",
    }
    cli.emu.clear_requests()
    again = cli.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout


def test_validate_verbose_says_the_service_may_refuse_system_properties(cli: Cli) -> None:
    write(cli, manifest(1, 'system_properties:\n  MATERIAL_IMG: "Yes"\n'))
    quiet = cli.run("validate")
    assert quiet.returncode == 0 and "administrators" not in quiet.stderr
    verbose = cli.run("-v", "validate")
    assert verbose.returncode == 0, verbose.stderr
    assert "manifests/assets.yaml:6:3: note: system_properties" in verbose.stderr
    assert "not administrators" in verbose.stderr


# --- 6. one writer at a time; old saved plans cannot replay write-only values ----------------

HOLDER = """
import sys
from reconciler.state.sqlite import SqliteStore
with SqliteStore(sys.argv[1]) as store, store.locks.hold(sys.argv[2], sys.argv[3], command="apply"):
    print("held", flush=True)
    sys.stdin.readline()  # hold it until told to let go
"""


def _hold_lock(cli: Cli) -> subprocess.Popen[str]:
    """Another process holding the project's lock until a line is written to its stdin."""
    state = cli.cwd / ".reconciler" / "state.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state), cli.emu.base_url, cli.emu.project_id],
        cwd=cli.cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_apply_fails_at_once_naming_the_holder_or_waits(cli: Cli) -> None:
    write(cli, manifest(1, "asset_name: Renamed 1\n"))
    holder = _hold_lock(cli)
    try:
        refused = cli.run("apply", "--auto-approve")
        assert refused.returncode == 1
        assert f"is locked by apply (pid {holder.pid} on {os.uname().nodename}, since" in (
            refused.stderr
        )
        assert "--lock-timeout" in refused.stderr and "Traceback" not in refused.stderr
        assert cli.emu.requests() == []  # nothing read, nothing sent

        waiter = cli.start("apply", "--auto-approve", "--lock-timeout", "2m")
        assert waiter.stderr is not None
        first = waiter.stderr.readline()
        assert f"held by apply (pid {holder.pid}" in first, first
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        out, err = waiter.communicate(timeout=120)
        assert waiter.returncode == 0, out + err
        assert cli.puts() == [(aid(1), {"asset_name": "Renamed 1"})]
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_ctrl_c_while_waiting_for_the_lock_ends_the_run_at_once(cli: Cli) -> None:
    """The wait for another writer's lock happens while the run's event loop is running (its
    plan reads overlap the load): a stop must still end it at once, with nothing sent."""
    write(cli, manifest(1, "asset_name: Renamed 1\n"))
    holder = _hold_lock(cli)
    try:
        waiter = cli.start("apply", "--auto-approve", "--lock-timeout", "2m")
        assert waiter.stderr is not None
        assert "held by apply" in waiter.stderr.readline()
        waiter.send_signal(signal.SIGINT)
        out, err = waiter.communicate(timeout=20)
        assert waiter.returncode == 130, out + err
        assert "Traceback" not in err
        assert cli.puts() == []
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_lock_left_by_a_process_that_died_is_taken_over(cli: Cli) -> None:
    write(cli, manifest(1, "asset_name: Renamed 1\n"))
    holder = _hold_lock(cli)
    holder.kill()
    holder.wait(timeout=30)
    result = cli.run("apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    assert cli.puts() == [(aid(1), {"asset_name": "Renamed 1"})]  # the change was written


def test_an_older_saved_plan_cannot_send_old_write_only_values_back(cli: Cli) -> None:
    def shared(project: str) -> str:
        return (
            "asset_name: Avatar 1\n"
            f"shared_config:\n  shared_type: SHARED\n  allowed_project_ids: [{project}]\n"
        )

    write(cli, manifest(1, shared("p-old")))
    assert cli.run("plan", "--out", "old.plan").returncode == 0
    write(cli, manifest(1, shared("p-new")))
    assert cli.run("apply", "--auto-approve").returncode == 0
    assert cli.emu.store.get_write_only(aid(1))["shared_config"]["allowed_project_ids"] == ["p-new"]

    cli.emu.clear_requests()
    replay = cli.run("apply", "old.plan")
    assert replay.returncode == 1
    assert "stale" in replay.stderr and "write-only" in replay.stderr
    assert cli.puts() == []
    assert cli.emu.store.get_write_only(aid(1))["shared_config"]["allowed_project_ids"] == ["p-new"]


def test_a_saved_plan_is_bound_to_its_target_name(cli: Cli) -> None:
    config = cli.cwd / "reconciler.yaml"
    config.write_text(
        json.dumps(
            {
                "targets": {
                    name: {"endpoint": cli.emu.base_url, "project_id": cli.emu.project_id}
                    for name in ("staging", "prod")
                },
                "default_target": "staging",
            }
        ),
        encoding="utf-8",
    )
    write(cli, manifest(1, "asset_name: Renamed 1\n"))
    base = [sys.executable, "-m", "reconciler", "--config", str(config)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=120
        )

    planned = run("--target", "staging", "plan", "--out", "t.plan")
    assert planned.returncode == 0, planned.stderr
    cli.emu.clear_requests()
    applied = run("--target", "prod", "apply", "t.plan")
    assert applied.returncode == 1
    assert "no plan for target prod (it covers staging)" in applied.stderr
    assert cli.emu.requests() == []
    # Without --target, a plan whose target the configuration no longer names is refused too.
    config.write_text(config.read_text().replace('"staging"', '"renamed"'), encoding="utf-8")
    renamed = run("apply", "t.plan")
    assert renamed.returncode == 1
    assert "was made for target staging" in renamed.stderr, renamed.stderr
    assert cli.emu.requests() == []
