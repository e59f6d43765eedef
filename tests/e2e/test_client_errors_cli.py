"""A command that talks to MetaStudio fails with one clear line and exit 1, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.emulator.testing import run_emulator

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_", "HW_"))}


def run_plan(endpoint: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    args = ["--endpoint", endpoint, "--project-id", "p-test", "plan", str(ROOT / "manifests")]
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        env={**BASE_ENV, **env, "HW_MAX_RETRIES": "1"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unreachable_service_exits_1_with_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    env = {"HUAWEICLOUD_SDK_AK": "cli-ak-value", "HUAWEICLOUD_SDK_SK": "cli-sk-value"}
    result = run_plan(endpoint, env, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot reach MetaStudio at {endpoint}" in result.stderr
    assert "cli-sk-value" not in result.stderr + result.stdout


def test_missing_credentials_name_the_variables(tmp_path: Path) -> None:
    result = run_plan("http://127.0.0.1:9", {}, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK (or HW_AUTH_TOKEN)" in result.stderr


def test_wrong_secret_key_exits_1_without_leaking(tmp_path: Path) -> None:
    with run_emulator([], project_id="p-test") as emu:
        env = {"HUAWEICLOUD_SDK_AK": emu.ak, "HUAWEICLOUD_SDK_SK": "definitely-wrong-sk"}
        result = run_plan(emu.base_url, env, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "401" in result.stderr
    assert "definitely-wrong-sk" not in result.stderr + result.stdout
