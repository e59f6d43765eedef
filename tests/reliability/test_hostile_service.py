"""A hostile service: every answer that could exhaust memory, the stack or the clock ends the run
with one clear error (exit 1), no traceback, in bounded time and, for the large ones, bounded
memory. The CLI runs as its own process against :mod:`.hostile` over real sockets."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import process

from .harness import Measured, run_measured
from .hostile import HostileService, hostile_service

pytestmark = pytest.mark.reliability

IDS = ["h-001", "h-002", "h-003"]
MANIFEST = """\
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: {asset_id}
spec:
  asset_name: Wanted {asset_id}
  tags: [NEWS]
"""


@pytest.fixture(scope="module")
def service() -> Iterator[HostileService]:
    with hostile_service(IDS) as running:
        yield running


@pytest.fixture
def workdir(tmp_path: Path, service: HostileService) -> Path:
    (tmp_path / "manifests").mkdir()
    for asset_id in IDS:
        (tmp_path / "manifests" / f"{asset_id}.yaml").write_text(MANIFEST.format(asset_id=asset_id))
    write_config(tmp_path, service)
    return tmp_path


def write_config(root: Path, service: HostileService, **settings: object) -> None:
    values = {"timeout": 2, "max_retries": 1, **settings}
    extra = "".join(f", {key}: {json.dumps(value)}" for key, value in values.items())
    (root / "reconciler.yaml").write_text(
        "targets:\n"
        f"  hostile: {{region: {process.REGION}, project_id: {process.PROJECT_ID}, "
        f"endpoint: '{service.endpoint}', rate_limits: {{list: 0, show: 0, update: 0}}{extra}}}\n"
    )


def cli(root: Path, *args: str, timeout: float = 60) -> Measured:
    argv = [sys.executable, "-m", "reconciler", *args]
    result = run_measured(argv, env=process.credentials_env(), cwd=root, timeout=timeout)
    result.assert_clean()
    return result


def test_a_200_mb_answer_is_refused_while_it_streams(
    workdir: Path, service: HostileService
) -> None:
    service.set_mode("big")
    result = cli(workdir, "plan", "manifests")
    assert result.returncode == 1, result.output
    assert "more than the limit of 32 MiB (max_response_mb of the target)" in result.stderr
    print(f"200 MB answer: peak RSS {result.max_rss_mb:.0f} MB, {result.wall_s:.2f}s")
    assert result.max_rss_mb < 200, f"peak RSS {result.max_rss_mb:.0f} MB for a 200 MB answer"
    assert result.wall_s < 20
    assert service.requests == 1, "an answer that is too large is not asked for again"


def test_a_declared_200_mb_answer_is_refused_before_it_is_read(
    workdir: Path, service: HostileService
) -> None:
    service.set_mode("big-declared")
    result = cli(workdir, "plan", "manifests")
    assert result.returncode == 1, result.output
    assert "declares 209,715,200 bytes, more than the limit of 32 MiB" in result.stderr
    assert result.max_rss_mb < 150
    assert result.wall_s < 10


def test_max_response_mb_is_the_limit(workdir: Path, service: HostileService) -> None:
    service.set_mode("normal")
    write_config(workdir, service, max_response_mb=0.0001)  # about 100 bytes
    result = cli(workdir, "plan", "manifests")
    assert result.returncode == 1, result.output
    assert "more than the limit of 0.0001 MiB" in result.stderr


def test_deep_json_is_an_error_not_a_recursion_error(
    workdir: Path, service: HostileService
) -> None:
    service.set_mode("deep")
    result = cli(workdir, "plan", "manifests")
    assert result.returncode == 1, result.output
    assert "unexpected response: JSON nested deeper than 64 levels" in result.stderr
    assert "RecursionError" not in result.output
    assert result.wall_s < 15


def test_a_count_of_a_billion_stops_at_the_first_empty_page(
    workdir: Path, service: HostileService
) -> None:
    service.set_mode("huge-count")
    result = cli(workdir, "drift", "manifests")
    assert result.returncode == 2, result.output  # names differ: drift, found quickly
    assert result.wall_s < 15
    assert result.max_rss_mb < 150
    assert service.requests <= 1 + 8, f"{service.requests} requests for one page of assets"


def test_pages_that_repeat_themselves_stop_the_run(workdir: Path, service: HostileService) -> None:
    service.set_mode("repeat")
    result = cli(workdir, "drift", "manifests")
    assert result.returncode == 1, result.output
    assert "repeats assets already read (count 1000000000); stopped paging" in result.stderr
    assert result.wall_s < 15
    assert service.requests <= 1 + 8


def test_a_one_byte_a_second_answer_cannot_stretch_the_deadline(
    workdir: Path, service: HostileService
) -> None:
    """timeout: 1 with one retry: two attempts of 1 s each, not a minute of dripping."""
    service.set_mode("drip")
    write_config(workdir, service, timeout=1)
    result = cli(workdir, "plan", "manifests")
    assert result.returncode == 1, result.output
    assert "timed out (no complete answer within 1s) after 2 attempts" in result.stderr
    assert result.wall_s < 8, f"{result.wall_s:.1f}s"


def test_timeout_bounds_the_whole_run(workdir: Path, service: HostileService) -> None:
    """Per-request deadlines of 30 s with retries could add up to minutes: --timeout 2 ends the
    run after two seconds, whatever it is waiting for."""
    service.set_mode("drip")
    write_config(workdir, service, timeout=30, max_retries=5)
    result = cli(workdir, "plan", "manifests", "--timeout", "1.5")
    assert result.returncode == 1, result.output
    assert "Error: the run did not finish within --timeout 1.5s; stopped." in result.stderr
    assert 1.5 <= result.wall_s < 5, f"{result.wall_s:.1f}s"


def test_import_refuses_what_validate_would_reject(workdir: Path, service: HostileService) -> None:
    """Ids from the service that are path-like or hold control characters, and an asset holding
    NaN, are refused by name; what is written validates."""
    service.set_mode("bad-ids")
    result = cli(workdir, "import", "--all", "--dir", "imported")
    assert result.returncode == 1, result.output
    assert result.stderr.count("Error: asset ") == 4, result.stderr
    assert (
        "'../../etc/cron.d/x'" in result.stderr
        and "does not match the manifest schema" in result.stderr
    )
    assert "\x1b" not in result.output
    assert "'nan-1'): the service sent asset_order as a non-finite number" in result.stderr
    written = sorted(p.name for p in (workdir / "imported").glob("*.yaml"))
    assert len(written) == len(IDS), written
    assert not (workdir / "etc").exists()
    check = cli(workdir, "validate", "imported")
    assert check.returncode == 0, check.output
    assert result.wall_s < 10


def strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_a_live_nan_is_an_error_for_that_asset_only(workdir: Path, service: HostileService) -> None:
    service.set_mode("nan")
    result = cli(workdir, "plan", "manifests", "--format", "json")
    assert result.returncode == 1, result.output  # an asset could not be planned
    assets = {a["asset_id"]: a for a in strict_json(result.stdout)["targets"][0]["assets"]}
    bad = assets[IDS[0]]
    assert bad["action"] == "error", bad
    assert "asset_order is not a finite number (NaN or Infinity)" in " ".join(bad["errors"])
    assert all(assets[i]["action"] == "update" for i in IDS[1:])  # the others plan as usual
    drift = cli(workdir, "drift", "manifests", "--format", "json")
    assert drift.returncode == 1, drift.output
    drifted = {a["asset_id"]: a for a in strict_json(drift.stdout)["projects"][0]["assets"]}
    assert drifted[IDS[0]]["errors"], drifted[IDS[0]]
    assert result.wall_s < 10 and drift.wall_s < 10


FORGED = ("\x1b", "\r", "\x07")


def assert_not_forged(text: str) -> None:
    for char in FORGED:
        assert char not in text, f"{char!r} reached the output"
    assert not any(line.startswith("Plan: 0 to change.") for line in text.splitlines()), text


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "manifests"],
        ["plan", "manifests", "--format", "markdown"],
        ["drift", "manifests"],
        ["apply", "manifests", "--auto-approve"],
        ["-v", "import", "h-001", "--dir", "imported"],
    ],
    ids=["plan", "markdown", "drift", "apply", "import"],
)
def test_live_names_and_service_messages_cannot_forge_output(
    workdir: Path, service: HostileService, args: list[str]
) -> None:
    """A live name (and the PUT's error message) with an escape sequence, a carriage return and
    a fake summary line is shown escaped, on its own line, in every output."""
    service.set_mode("names")
    result = cli(workdir, *args)
    assert result.returncode in (0, 1, 2), result.output
    assert_not_forged(result.output)
    if args[1] == "import":  # the name goes into the file, YAML-escaped, and nowhere else
        written = next((workdir / "imported").glob("*.yaml")).read_text()
        assert_not_forged(written)
        assert '"\\e[31mEvil\\e[0m\\r\\nPlan: 0 to change.\\a"' in written, written
    else:
        assert "\\u001b[31mEvil" in result.output, result.output
    assert result.wall_s < 10
