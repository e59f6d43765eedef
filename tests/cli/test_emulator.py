"""``reconciler emulator serve`` as a user runs it: a real process on a real port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from reconciler.api import signing

pytestmark = pytest.mark.e2e


def _wait_for(path: Path, process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if process.poll() is not None:
            raise AssertionError(f"emulator exited: {process.communicate()}")
        time.sleep(0.05)
    raise AssertionError("emulator did not start")


def test_serve_with_seed_db_record_and_env_credentials(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("- asset_id: a1\n  asset_name: From YAML\n  asset_type: IMAGE\n")
    ready, record = tmp_path / "ready", tmp_path / "requests.jsonl"
    env = {
        **os.environ,
        "HUAWEICLOUD_SDK_AK": "cli-ak",
        "HUAWEICLOUD_SDK_SK": "cli-secret-value",
        "HUAWEICLOUD_SDK_PROJECT_ID": "p-cli",
    }
    args = [
        sys.executable,
        "-m",
        "reconciler",
        "emulator",
        "serve",
        "--port",
        "0",
        "--seed",
        str(seed),
        "--db",
        str(tmp_path / "db.sqlite"),
        "--record",
        str(record),
        "--ready-file",
        str(ready),
        "--rate-limits",
        "show=0",
    ]
    process = subprocess.Popen(
        args, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        base_url = _wait_for(ready, process)
        path = "/v1/p-cli/digital-assets/a1"
        headers = {"Host": base_url.split("://")[1], "X-Sdk-Date": signing.sdk_date()}
        headers["Authorization"] = signing.authorization(
            "cli-ak", "cli-secret-value", "GET", path, [], headers, b""
        )
        response = httpx.get(base_url + path, headers=headers)
        assert response.status_code == 200 and response.json()["asset_name"] == "From YAML"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    assert "cli-secret-value" not in stderr
    assert "Seeded 1 assets" in stderr and "p-cli" in stderr
    entry = json.loads(record.read_text().splitlines()[0])
    assert entry["status"] == 200 and entry["headers"]["authorization"] == "***"


def test_serve_without_credentials_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HW_", "HUAWEICLOUD_"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "emulator",
            "serve",
            "--project-id",
            "p",
            "--port",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "credentials" in result.stderr and "Traceback" not in result.stderr


def test_serve_with_bad_seed_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "seed.json"
    bad.write_text("{broken")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "emulator",
            "serve",
            "--project-id",
            "p",
            "--ak",
            "a",
            "--sk",
            "s",
            "--port",
            "0",
            "--seed",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "not valid JSON" in result.stderr and "Traceback" not in result.stderr


def _signed(base_url: str, method: str, path: str, body: bytes = b"") -> httpx.Response:
    headers = {
        "Host": base_url.split("://")[1],
        "X-Sdk-Date": signing.sdk_date(),
        "Content-Type": "application/json",
    }
    headers["Authorization"] = signing.authorization(
        "cli-ak", "cli-secret-value", method, path, [], headers, body
    )
    return httpx.request(method, base_url + path, headers=headers, content=body)


def test_serve_flags_for_summary_rows_short_answers_and_edits_during_apply(
    tmp_path: Path,
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            [
                {"asset_id": "a1", "asset_name": "One", "asset_type": "IMAGE", "tags": ["X"]},
                {"asset_id": "a2", "asset_name": "Two", "asset_type": "IMAGE"},
            ]
        )
    )
    ready = tmp_path / "ready"
    env = {
        **os.environ,
        "HUAWEICLOUD_SDK_AK": "cli-ak",
        "HUAWEICLOUD_SDK_SK": "cli-secret-value",
        "HUAWEICLOUD_SDK_PROJECT_ID": "p-cli",
    }
    args = [sys.executable, "-m", "reconciler", "emulator", "serve", "--port", "0"]
    args += ["--seed", str(seed), "--ready-file", str(ready), "--rate-limits", "show=0"]
    args += ["--list-omit", "tags", "--put-answer", "short"]
    args += ["--edit-on-put", 'a1>a2:asset_name="Edited in the console",asset_order=4']
    process = subprocess.Popen(
        args, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        base_url = _wait_for(ready, process)
        rows = _signed(base_url, "GET", "/v1/p-cli/digital-assets").json()["assets"]
        assert [("tags" in row) for row in rows] == [False, False]
        assert _signed(base_url, "GET", "/v1/p-cli/digital-assets/a1").json()["tags"] == ["X"]
        answer = _signed(base_url, "PUT", "/v1/p-cli/digital-assets/a1", b'{"asset_order": 3}')
        assert answer.status_code == 200 and "asset_order" not in answer.json()
        edited = _signed(base_url, "GET", "/v1/p-cli/digital-assets/a2").json()
        assert (edited["asset_name"], edited["asset_order"]) == ("Edited in the console", 4)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)


def test_serve_refuses_a_malformed_edit_on_put(tmp_path: Path) -> None:
    env = {**os.environ, "HUAWEICLOUD_SDK_AK": "a", "HUAWEICLOUD_SDK_SK": "b"}
    args = [sys.executable, "-m", "reconciler", "emulator", "serve", "--project-id", "p"]
    result = subprocess.run(
        [*args, "--port", "0", "--edit-on-put", "a1-no-colon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "--edit-on-put 'a1-no-colon'" in result.stderr and "Traceback" not in result.stderr
