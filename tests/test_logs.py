"""``--log-format json``: one object per line, RFC 3339 UTC milliseconds, structured fields,
errors through the same formatter, secrets redacted."""

from __future__ import annotations

import base64
import json
import logging
import re
from urllib.parse import quote, quote_plus

import pytest
from cli_process import DemoProject

from reconciler.logs import JsonFormatter, RedactingFilter, redact, register_secret

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def objects(stderr: str) -> list[dict[str, object]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    for entry in parsed:
        assert TIME.match(str(entry["time"])), entry["time"]
        assert {"level", "logger", "message"} <= entry.keys()
    return parsed


@pytest.mark.e2e
def test_requests_are_logged_with_their_fields(demo_project: DemoProject) -> None:
    result = demo_project.run("--log-format", "json", "-vv", "plan", "manifests")
    assert result.returncode == 0, result.stderr
    requests = [e for e in objects(result.stderr) if e.get("status") == 200]
    assert requests
    first = requests[0]
    assert first["logger"] == "reconciler.api.client"
    assert first["level"] == "debug"
    assert first["target"] == "default"
    assert first["attempt"] == 1
    assert first["method"] == "GET" and first["path"] == "/v1/p-test/digital-assets"
    assert isinstance(first["request_id"], str) and first["request_id"]


@pytest.mark.e2e
def test_errors_go_through_the_same_formatter(demo_project: DemoProject) -> None:
    env = demo_project.env()
    del env["HUAWEICLOUD_SDK_SK"]
    result = demo_project.run("plan", "--log-format", "json", env=env)
    assert result.returncode == 1
    (entry,) = objects(result.stderr)
    assert entry["level"] == "error" and entry["logger"] == "reconciler.cli"
    assert "HUAWEICLOUD_SDK_SK" in str(entry["message"])
    debug = objects(demo_project.run("plan", "--log-format", "json", "-vv", env=env).stderr)
    assert any("ConfigError" in str(e.get("exception", "")) for e in debug)
    assert "Traceback" not in result.stderr


def test_secrets_are_redacted_in_every_field() -> None:
    register_secret("s3cr3t-value-XYZ")
    record = logging.LogRecord(
        "reconciler.x", logging.WARNING, __file__, 1, "token %s here", ("s3cr3t-value-XYZ",), None
    )
    record.asset_id = "id-s3cr3t-value-XYZ"
    record.attempt = 2
    RedactingFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert "s3cr3t-value-XYZ" not in json.dumps(entry)
    assert entry["message"] == "token *** here"
    assert entry["asset_id"] == "id-***" and entry["attempt"] == 2
    assert TIME.match(entry["time"])


def test_escaped_forms_of_a_secret_are_redacted() -> None:
    secret = 'sk/Secret+Value="quoted"\\back slash'
    register_secret(secret)
    for form in (
        secret,
        repr(secret),
        json.dumps(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(secret.encode()).decode(),
    ):
        shown = redact(f"before {form} after")
        assert "Secret" not in shown and "U2VjcmV0" not in shown, shown


def test_log_records_cannot_forge_lines() -> None:
    record = logging.LogRecord(
        "reconciler.x", logging.WARNING, __file__, 1, "name %s", ("Evil\x1b[2J\rPlan: 0",), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "name Evil\\u001b[2J Plan: 0"
