"""The first hour with the tool, as a newcomer lives it: each message read as printed by a real
``python -m reconciler`` process, against the emulator over loopback where one is needed.

One emulator serves the whole module (the tests that write restore what they changed or work
on assets no other test reads), so the module costs one start-up.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import samples
from reconciler.emulator.samples import asset_id
from reconciler.emulator.testing import RunningEmulator, run_emulator
from tests.e2e.cli_runner import Cli

pytestmark = pytest.mark.e2e

ASSETS = 6


def manifest(index: int, name: str) -> str:
    return (
        "apiVersion: reconciler.metastudio/v1\n"
        "kind: DigitalAsset\n"
        "metadata:\n"
        f"  asset_id: {asset_id(index)}\n"
        "spec:\n"
        f"  asset_name: {name}\n"
    )


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with run_emulator([samples.image(i, asset_name=f"Image {i}") for i in range(ASSETS)]) as emu:
        yield emu


@pytest.fixture
def cli(emu: RunningEmulator, tmp_path: Path) -> Cli:
    return Cli(emu, tmp_path)


def bare(
    cli: Cli, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m reconciler ARGS`` as typed: no --endpoint or --project-id added."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cli.cwd,
        env={**cli.env, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


# --- 4, 5: regions ------------------------------------------------------------------------------


def emulator_target(cli: Cli) -> None:
    (cli.cwd / "reconciler.yaml").write_text(
        "targets:\n"
        f"  local: {{endpoint: '{cli.emu.base_url}', project_id: {cli.emu.project_id}}}\n",
        encoding="utf-8",
    )
    (cli.cwd / "manifests").mkdir()
    (cli.cwd / "manifests" / "a.yaml").write_text(manifest(0, "Image 0"), encoding="utf-8")


def test_region_beside_an_endpoint_from_the_file_is_warned_about_once(cli: Cli) -> None:
    emulator_target(cli)
    result = bare(cli, "--region", "cn-north-4", "plan")
    assert result.returncode == 0, result.stderr
    warning = (
        "Warning: --region cn-north-4 does not choose the endpoint of target local: "
        f"targets.local.endpoint in reconciler.yaml gives {cli.emu.base_url}, and requests go "
        "there (the region still sets the rate limits)"
    )
    assert result.stderr.count(warning) == 1, result.stderr
    assert "No changes." in result.stdout
    # Without --region there is nothing to say.
    quiet = bare(cli, "plan")
    assert quiet.returncode == 0 and "Warning" not in quiet.stderr, quiet.stderr


def test_a_misspelt_region_warning_reads_warning(tmp_path: Path) -> None:
    """No emulator: the warning comes before any request, which a proxy nobody listens on
    keeps on this machine (and --timeout short)."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "a.yaml").write_text(manifest(0, "Image 0"), encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HUAWEICLOUD_", "HW_")) and "proxy" not in k.lower()
    }
    env.update(
        HUAWEICLOUD_SDK_AK="ak-test-1",
        HUAWEICLOUD_SDK_SK="sk-test-1",
        HTTPS_PROXY=f"http://127.0.0.1:{free_port()}",
    )
    typed = ["--region", "cn-nort-4", "--project-id", "p", "--timeout", "1", "plan"]
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", *typed],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    no_traceback(result)
    assert result.stderr.splitlines()[0] == (
        "Warning: region cn-nort-4 is not one MetaStudio is documented in (cn-north-4, "
        "cn-east-3, ap-southeast-3); using https://metastudio.cn-nort-4.myhuaweicloud.com"
    ), result.stderr


def test_a_region_given_as_a_url_is_shown_as_typed_and_sent_to_the_endpoint(cli: Cli) -> None:
    url = "https://metastudio.cn-north-4.myhuaweicloud.com"
    (cli.cwd / "manifests").mkdir()
    (cli.cwd / "manifests" / "a.yaml").write_text(manifest(0, "Image 0"), encoding="utf-8")
    result = bare(cli, "--region", url, "--project-id", "p", "plan", "--format", "json")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: --region: {url} is a host or URL, not a region name; give it as the endpoint "
        "(--endpoint, or endpoint: in reconciler.yaml), or give a region like cn-north-4"
    ), result.stderr
    assert "'" not in result.stderr


# --- 6: a refused connection ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_loopback_port_fails_fast_and_says_one_request_was_retried(cli: Cli) -> None:
    (cli.cwd / "manifests").mkdir()
    (cli.cwd / "manifests" / "a.yaml").write_text(manifest(0, "Image 0"), encoding="utf-8")
    port = free_port()  # closed again: nothing listens there
    started = time.monotonic()
    result = bare(cli, "--endpoint", f"http://127.0.0.1:{port}", "--project-id", "p", "plan")
    took = time.monotonic() - started
    assert result.returncode == 1
    no_traceback(result)
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Warning: retried 1 request 5 times: 5 x connection refused", result.stderr
    assert lines[1].startswith(
        f"Error: GET /v1/p/digital-assets failed: connection refused by 127.0.0.1:{port} "
        "(nothing listens there) after 6 attempts; cannot reach MetaStudio at "
    ), result.stderr
    assert took < 6, took  # was 11.4 s of back-off for a port nobody listens on


# --- 7: folders -------------------------------------------------------------------------------


def test_folders_without_manifests_are_named_as_folders(cli: Cli) -> None:
    (cli.cwd / "empty").mkdir()
    empty = bare(cli, "plan", "empty/")
    assert (empty.returncode, empty.stderr) == (
        1,
        "Error: empty: a folder with no .yaml or .yml files in it\n",
    )
    missing = bare(cli, "plan", "nonexistent-dir")
    assert (missing.returncode, missing.stderr) == (
        1,
        "Error: nonexistent-dir: no such file or folder\n",
    )
    default = bare(cli, "plan")
    assert default.returncode == 1
    assert default.stderr == (
        "Error: manifests: no such folder; manifests/ is only the default path when none is "
        "given: name the files or folders that hold your manifests (e.g. reconciler plan "
        "path/to/manifests)\n"
    )
    both = bare(cli, "validate", "empty", "nonexistent-dir")
    assert both.returncode == 1
    assert both.stderr.splitlines() == [
        "empty: a folder with no .yaml or .yml files in it",
        "nonexistent-dir: no such file or folder",
        "Error: no manifests to read.",
    ]


# --- 8: Ctrl-C --------------------------------------------------------------------------------


def read_until(stream: Any, text: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.1)
        if ready:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    assert text in seen, seen.decode(errors="replace")
    return seen


def test_ctrl_c_at_the_apply_prompt_says_nothing_was_sent(cli: Cli) -> None:
    (cli.cwd / "manifests").mkdir()
    (cli.cwd / "manifests" / "a.yaml").write_text(manifest(5, "Renamed 5"), encoding="utf-8")
    cli.emu.clear_requests()
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            cli.argv("apply"),
            cwd=cli.cwd,
            env=cli.env,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(slave)
        seen = read_until(proc.stderr, b"Enter a value: ")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        os.close(master)
    stderr = (seen + err).decode()
    assert proc.returncode == 130
    assert "Aborted." not in stderr
    assert stderr.rstrip().endswith("Interrupted at the prompt: nothing was sent."), stderr
    assert "Traceback" not in stderr
    assert cli.puts() == []


def test_ctrl_c_stops_emulator_serve_cleanly(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "emulator",
            "serve",
            "--port",
            "0",
            "--project-id",
            "p",
            "--ak",
            "ak-serve",
            "--sk",
            "sk-serve",
            "--ready-file",
            str(ready),
        ],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Aborted." not in err
    assert err.rstrip().endswith("Emulator stopped."), err


# --- 9: a saved plan applied twice ------------------------------------------------------------


def test_a_saved_plan_applied_again_says_already_applied(cli: Cli) -> None:
    (cli.cwd / "manifests").mkdir()
    (cli.cwd / "manifests" / "a.yaml").write_text(
        manifest(3, "Saved 3") + "---\n" + manifest(4, "Image 4"), encoding="utf-8"
    )
    planned = cli.run("plan", "--out", "plan.json")
    assert planned.returncode == 0, planned.stderr
    first = cli.run("apply", "plan.json")
    assert first.returncode == 0, first.stderr
    cli.emu.clear_requests()
    again = cli.run("apply", "plan.json")
    assert again.returncode == 0, again.stderr
    assert "stale" not in again.stderr + again.stdout
    assert again.stdout.strip().splitlines()[-1] == (
        "The saved plan was already applied: the live state shows every change it holds "
        "(1 asset); nothing was sent."
    ), again.stdout
    assert cli.puts() == []

    # Someone renames it in the console: now the plan is stale, not applied.
    cli.emu.store.patch(asset_id(3), {"asset_name": "Console 3"})
    cli.emu.clear_requests()
    stale = cli.run("apply", "plan.json")
    assert stale.returncode == 1
    assert "the saved plan is stale: 1 asset changed since it was made" in stale.stderr
    assert f"{asset_id(3)} (Saved 3): changed since the plan was made" in stale.stderr
    assert cli.puts() == []


# --- 10: -v and -vv ---------------------------------------------------------------------------


def test_verbose_plan_tells_phases_with_times_requests_and_where_the_state_lives(cli: Cli) -> None:
    (cli.cwd / "manifests").mkdir()
    (cli.cwd / "manifests" / "a.yaml").write_text(
        manifest(0, "Image 0") + "---\n" + manifest(1, "Image 1"), encoding="utf-8"
    )
    quiet = cli.run("plan")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    verbose = cli.run("plan", "-v")
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout == quiet.stdout  # -v adds to stderr only
    lines = verbose.stderr.splitlines()
    stamp = r"\[ *\d+\.\d\ds\] "
    expected = [
        stamp + r"Loading manifests\.\.\.",
        stamp + r"Reading live assets from http://127\.0\.0\.1:\d+ while loading manifests\.\.\.",
        stamp + r"\[2/2\] reading live assets, \d+\.\d s",
        stamp + r"Planned 2 assets in \d+\.\ds\.",
        stamp + rf"target default: 1 request to {re.escape(cli.emu.base_url)} \(1 list\)",
        stamp + r"state: \.reconciler/state\.sqlite",
    ]
    assert len(lines) == len(expected), verbose.stderr
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert "DEBUG" not in verbose.stderr

    debug = cli.run("plan", "-vv")
    per_request = [line for line in debug.stderr.splitlines() if line.startswith("DEBUG")]
    assert len(per_request) == 1, debug.stderr
    assert re.fullmatch(
        rf"DEBUG reconciler\.api\.client: GET /v1/{cli.emu.project_id}/digital-assets -> 200 "
        r"request_id=\w+ \d+\.\d{3}s \(attempt 1\)",
        per_request[0],
    )


# --- 11: where the targeting warning goes -----------------------------------------------------


def test_the_targeting_warning_is_part_of_the_plan_on_stdout(cli: Cli) -> None:
    (cli.cwd / "manifests").mkdir()
    (cli.cwd / "manifests" / "a.yaml").write_text(
        manifest(0, "Image 0") + "---\n" + manifest(1, "Image 1"), encoding="utf-8"
    )
    result = cli.run("plan", "--asset", asset_id(0))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.rstrip().endswith(
        "Warning: targeting is in effect (--asset): this run covers 1 of 2 manifests of the "
        "target, so changes to the other assets are neither shown nor applied; run without "
        "--asset to reconcile everything"
    ), result.stdout
    # In JSON the plan document carries it, and stderr says it to the person too.
    as_json = cli.run("plan", "--asset", asset_id(0), "--format", "json")
    assert "targeting is in effect" in as_json.stdout
    assert as_json.stderr.startswith("Warning: targeting is in effect")


# --- 12: watch --once -------------------------------------------------------------------------


def test_watch_once_says_once_not_every_five_minutes(cli: Cli) -> None:
    (cli.cwd / "manifests").mkdir()
    (cli.cwd / "manifests" / "a.yaml").write_text(manifest(0, "Image 0"), encoding="utf-8")
    result = cli.run("watch", "--once")
    assert result.returncode == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert "every" not in first
    assert first.endswith(f"at {cli.emu.base_url}) once (--once); self-heal off"), first
