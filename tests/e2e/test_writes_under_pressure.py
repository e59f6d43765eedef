"""Writes that hold when the service pushes back (design.md 3.11), end to end.

Each test runs ``reconciler apply`` as a real process against the emulator on a loopback socket
while the emulator throttles PUTs, fails them, loses their answers or has someone edit the asset
in the console meanwhile.  Each asserts every PUT that reached the service (from its request
log), that a read of the asset preceded each of them, the per-asset words, the summary, the exit
code and the live state after the run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator.samples import asset_id as aid
from reconciler.emulator.testing import RunningEmulator, run_emulator
from reconciler.errors import ConfigError
from tests.e2e.cli_runner import Cli
from tests.e2e.test_trustworthy_writes import block

pytestmark = pytest.mark.e2e

SUPPORT_LIVE = "asset_extra_meta:\n  human_model_2d_meta:\n    support_live: true\n"
# The whole block the plan shows and apply sends for SUPPORT_LIVE: the manifest's one field, the
# others kept from live.
SENT_BLOCK = {
    "asset_extra_meta": {
        "human_model_2d_meta": {
            "support_live": True,
            "model_resolution": "1080P",
            "model_version": "V3",
            "device_names": ["studio-a"],
        }
    }
}


def avatar(i: int) -> dict[str, Any]:
    return {
        "asset_id": aid(i),
        "asset_name": f"Avatar {i}",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "tags": ["NEWS"],
        "asset_extra_meta": {
            "human_model_2d_meta": {
                "support_live": False,
                "model_resolution": "1080P",
                "model_version": "V3",
                "device_names": ["studio-a"],
            }
        },
    }


def write(cli: Cli, *specs: tuple[int, str]) -> None:
    docs = [
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
        f"metadata:\n  asset_id: {aid(i)}\nspec:\n" + textwrap.indent(spec, "  ")
        for i, spec in specs
    ]
    directory = cli.cwd / "manifests"
    directory.mkdir(exist_ok=True)
    (directory / "assets.yaml").write_text("---\n".join(docs), encoding="utf-8")


def puts(emu: RunningEmulator) -> list[tuple[str, int | None]]:
    """(asset id, status) of every PUT the service was sent, in order (None: no answer)."""
    return [
        (e["path"].rsplit("/", 1)[1], e["status"]) for e in emu.requests() if e["method"] == "PUT"
    ]


def reads_before_each_put(emu: RunningEmulator, asset: str) -> list[int]:
    """For each PUT of ``asset``: how many reads of it came after the one before (or the plan's
    reads, for the first), so that a 0 means a PUT went out on a read made before the last."""
    counts: list[int] = []
    since = 0
    for entry in emu.requests():
        if entry["method"] == "GET":
            ids = [value for key, value in entry["query"] if key == "asset_id"]
            if asset in ids or entry["path"].endswith(asset):
                since += 1
        elif entry["method"] == "PUT" and entry["path"].endswith(asset):
            counts.append(since)
            since = 0
    return counts


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    with run_emulator([avatar(1), avatar(2)]) as emu:
        yield Cli(emu, tmp_path)


# --- 1. every retry re-reads ----------------------------------------------------------------


def test_a_console_edit_made_while_a_throttled_put_waits_is_not_reverted(cli: Cli) -> None:
    write(cli, (1, SUPPORT_LIVE))
    cli.emu.fail_puts(429, times=1, asset_id=aid(1), retry_after=2)
    cli.emu.edit_later(
        aid(1),
        {"asset_extra_meta.human_model_2d_meta.model_version": "V4"},
        after=aid(1),
        delay=0.3,
    )
    result = cli.run("apply", "--auto-approve")

    assert result.returncode == 1, result.stdout + result.stderr
    assert puts(cli.emu) == [(aid(1), 429)]  # the retry was not sent over the edit
    assert block(cli.emu, 1)["model_version"] == "V4"
    assert block(cli.emu, 1)["support_live"] is False
    assert f"{aid(1)}: CHANGED SINCE PLAN (Avatar 1)" in result.stdout
    assert "Apply failed: 0 changed, 0 failed, 1 changed since plan (not sent)." in result.stdout


def test_each_retry_of_a_throttled_or_failed_put_follows_a_fresh_read(cli: Cli) -> None:
    write(cli, (1, SUPPORT_LIVE))
    cli.emu.fail_puts(429, times=1, asset_id=aid(1), retry_after=1)
    cli.emu.fail_puts(503, times=1, asset_id=aid(1))
    result = cli.run("apply", "--auto-approve")

    assert result.returncode == 0, result.stdout + result.stderr
    assert puts(cli.emu) == [(aid(1), 429), (aid(1), 503), (aid(1), 200)]
    assert all(n >= 1 for n in reads_before_each_put(cli.emu, aid(1)))
    bodies = [e["body"] for e in cli.emu.requests() if e["method"] == "PUT"]
    assert bodies == [SENT_BLOCK] * 3
    assert block(cli.emu, 1)["support_live"] is True
    assert f"{aid(1)}: updated (Avatar 1)" in result.stdout
    assert "Apply complete! 1 changed, 0 failed." in result.stdout


# --- 2. a stop stops writes -------------------------------------------------------------------


def test_a_retry_after_past_the_deadline_is_not_waited_for(cli: Cli) -> None:
    write(cli, (1, SUPPORT_LIVE))
    cli.emu.fail_puts(429, times=1, asset_id=aid(1), retry_after=20)
    started = time.monotonic()
    result = cli.run("--timeout", "5", "apply", "--auto-approve", "--report", "result.json")
    took = time.monotonic() - started

    assert took < 10, f"the run took {took:.1f}s"
    time.sleep(0.5)  # nothing is sent after the run
    assert puts(cli.emu) == [(aid(1), 429)]
    assert block(cli.emu, 1)["support_live"] is False
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{aid(1)}: not sent (Avatar 1): after 1 attempt that did not land" in result.stdout
    assert "past the run's --timeout" in result.stdout
    assert "Apply failed: 0 changed, 0 failed, 1 not sent." in result.stdout
    report = json.loads((cli.cwd / "result.json").read_text(encoding="utf-8"))
    assert report["assets"] == [
        {
            "asset_id": aid(1),
            "name": "Avatar 1",
            "outcome": "not sent",
            "attempts": 1,
            "wait_seconds": 20.0,
            "deadline": True,
        }
    ]
    assert report["summary"]["not_sent"] == 1 and report["exit_code"] == 1


def test_sigterm_during_a_back_off_sends_nothing_more(cli: Cli) -> None:
    write(cli, (1, SUPPORT_LIVE))
    cli.emu.fail_puts(429, times=1, asset_id=aid(1), retry_after=10)
    proc = cli.start("apply", "--auto-approve")
    deadline = time.monotonic() + 30
    while not puts(cli.emu) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert puts(cli.emu) == [(aid(1), 429)]
    time.sleep(0.3)  # the client is waiting out Retry-After
    stopped = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - stopped < 3

    time.sleep(0.5)
    assert puts(cli.emu) == [(aid(1), 429)]
    assert block(cli.emu, 1)["support_live"] is False
    assert proc.returncode == 143, out + err
    assert f"{aid(1)}: not sent (Avatar 1): stopped while waiting to try again" in out
    assert "Apply interrupted by SIGTERM: 0 changed, 0 failed, 1 not sent." in out


# --- 3. lost answers are resolved -------------------------------------------------------------


@pytest.mark.parametrize(("mode", "kind"), [("drop", "connection"), ("gateway", "HTTP 504")])
def test_a_write_whose_answer_is_lost_but_landed_counts_as_changed(
    cli: Cli, mode: str, kind: str
) -> None:
    write(cli, (1, SUPPORT_LIVE), (2, "asset_name: Avatar 2 renamed\n"))
    cli.emu.lose_put_answers(mode, times=5, asset_id=aid(1))
    result = cli.run("apply", "--auto-approve", "--report", "result.json")

    assert result.returncode == 0, result.stdout + result.stderr
    assert [p for p in puts(cli.emu) if p[0] == aid(1)] == [
        (aid(1), 504 if mode == "gateway" else None)
    ]  # sent once: reading it back showed it had landed
    assert block(cli.emu, 1)["support_live"] is True
    line = next(x for x in result.stdout.splitlines() if x.startswith(aid(1)))
    assert line.startswith(f"{aid(1)}: applied (answer lost) (Avatar 1): no answer came")
    assert kind in line
    assert "Apply complete! 2 changed (1 with the answer lost), 0 failed." in result.stdout
    report = json.loads((cli.cwd / "result.json").read_text(encoding="utf-8"))
    assert [(a["asset_id"], a["outcome"], a["attempts"]) for a in report["assets"]] == [
        (aid(1), "applied (answer lost)", 1),
        (aid(2), "updated", 1),
    ]
    assert report["summary"]["changed"] == 2 and report["summary"]["answers_lost"] == 1
    assert report["exit_code"] == 0
    again = cli.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout


def test_a_lost_answer_to_a_put_that_did_not_land_is_retried_after_a_read(cli: Cli) -> None:
    write(cli, (1, SUPPORT_LIVE))
    cli.emu.fail_puts(504, times=1, asset_id=aid(1), empty=True)  # a proxy gave up: not applied
    result = cli.run("apply", "--auto-approve")

    assert result.returncode == 0, result.stdout + result.stderr
    assert puts(cli.emu) == [(aid(1), 504), (aid(1), 200)]
    assert all(n >= 1 for n in reads_before_each_put(cli.emu, aid(1)))
    assert block(cli.emu, 1)["support_live"] is True
    assert "Apply complete! 1 changed, 0 failed." in result.stdout


def test_a_lost_answer_that_reading_back_cannot_settle_is_outcome_unknown(cli: Cli) -> None:
    write(cli, (1, SUPPORT_LIVE))
    cli.emu.lose_put_answers("drop", asset_id=aid(1))
    # Someone edits the same block right after the PUT landed: live now shows neither the
    # planned change alone nor the state it was planned from.
    cli.emu.edit_on_put(
        aid(1), {"asset_extra_meta.human_model_2d_meta.model_version": "V4"}, after=aid(1)
    )
    result = cli.run("apply", "--auto-approve")

    assert result.returncode == 1, result.stdout + result.stderr
    assert puts(cli.emu) == [(aid(1), None)]
    assert f"{aid(1)}: OUTCOME UNKNOWN (Avatar 1)" in result.stdout
    assert "run `reconciler plan`" in result.stdout
    assert (
        "Apply failed: 0 changed, 0 failed, 1 outcome unknown (run `reconciler plan`)."
        in result.stdout
    )
    assert block(cli.emu, 1)["support_live"] is True  # it did land, under someone's edit


# --- 8. an apply with nothing but errors says so ----------------------------------------------


def test_an_apply_whose_every_row_is_an_error_says_so(cli: Cli) -> None:
    write(cli, (99, "asset_name: Nobody\n"))
    result = cli.run("apply", "--auto-approve")

    assert result.returncode == 1
    assert puts(cli.emu) == []
    assert "Error: nothing was applied: 1 asset could not be planned" in result.stderr
    assert "Apply failed: 0 changed, 0 failed, 1 not applied (see the plan)." in result.stdout
    assert "Traceback" not in result.stderr


def test_the_emulator_serves_put_faults_from_the_command_line(tmp_path: Path) -> None:
    """``reconciler emulator serve --put-fault/--lose-put-answer`` parse and take effect."""
    from reconciler.emulator.config import parse_lost_answer, parse_put_fault

    fault = parse_put_fault(f"{aid(1)}:status=429,times=2,retry_after=5")
    assert (fault.asset_id, fault.status, fault.times, fault.retry_after) == (aid(1), 429, 2, 5)
    assert parse_put_fault("status=503,empty=1").empty
    lost = parse_lost_answer("mode=delay,seconds=3")
    assert (lost.mode, lost.seconds, lost.asset_id) == ("delay", 3.0, None)
    with pytest.raises(ConfigError, match="status must be one of"):
        parse_put_fault("status=404")
    with pytest.raises(ConfigError, match="mode must be one of"):
        parse_lost_answer("mode=vanish")
    served = subprocess.run(
        [sys.executable, "-m", "reconciler", "emulator", "serve", "--put-fault", "status=7"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert served.returncode == 1 and "status must be one of" in served.stderr
    assert "Traceback" not in served.stderr
