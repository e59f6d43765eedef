"""A careless user's settings and a hostile network: malformed credentials, endpoints and regions,
unsafe reconciler.yaml files, names that do not resolve and certificates that do not verify.
Each ends at once with one clear error (exit 1) that names where the bad value came from, no
traceback, and nothing retried that cannot get better."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import process

from .harness import Measured, run_measured
from .hostile import HostileService, hostile_service, tls_service

pytestmark = pytest.mark.reliability

IDS = ["s-001"]
MANIFEST = """\
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: s-001
spec:
  asset_name: Settings test
"""


@pytest.fixture(scope="module")
def service() -> Iterator[HostileService]:
    with hostile_service(IDS) as running:
        yield running


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "s-001.yaml").write_text(MANIFEST)
    return tmp_path


def cli(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30) -> Measured:
    argv = [sys.executable, "-m", "reconciler", *args]
    result = run_measured(argv, env=env or process.credentials_env(), cwd=root, timeout=timeout)
    result.assert_clean()
    return result


def on(service: HostileService, *args: str) -> list[str]:
    return ["--endpoint", service.endpoint, "--project-id", process.PROJECT_ID, *args]


BAD_VALUES = {  # the other variables and kinds: tests/api/test_auth.py
    "HUAWEICLOUD_SDK_AK": "AKVISIBLE\x1b[2JKEY",
    "HW_AUTH_TOKEN": "iam-token-\u4e2d\u6587-secret",
}


@pytest.mark.parametrize("variable", list(BAD_VALUES))
def test_malformed_credentials_are_refused_before_any_request(
    workdir: Path, service: HostileService, variable: str
) -> None:
    service.set_mode("normal")
    env = process.credentials_env()
    if variable == "HW_AUTH_TOKEN":  # a token is read only when no AK/SK pair is set
        env.pop("HUAWEICLOUD_SDK_AK")
        env.pop("HUAWEICLOUD_SDK_SK")
    env[variable] = BAD_VALUES[variable]
    result = cli(workdir, *on(service, "plan", "manifests"), env=env)
    assert result.returncode == 1, result.output
    assert f"Error: {variable}: the " in result.stderr, result.stderr
    assert "only printable ASCII is allowed" in result.stderr
    assert env[variable][4:12] not in result.output, "the value itself was printed"
    assert service.requests == 0
    assert result.wall_s < 10


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--endpoint", "http://admin:hunter2-secret@127.0.0.1:9"],
            "--endpoint: the endpoint 'http://127.0.0.1:9' must not hold a user name or password",
        ),
        (
            ["--region", "metastudio.example.com/v1"],
            "--region: metastudio.example.com/v1 is a host or URL, not a region name",
        ),
    ],
    ids=["userinfo", "region"],
)
def test_endpoint_with_user_information_and_a_host_as_region_are_refused(
    workdir: Path, args: list[str], expected: str
) -> None:
    result = cli(workdir, *args, "--project-id", process.PROJECT_ID, "plan", "manifests")
    assert result.returncode == 1, result.output
    assert expected in result.stderr, result.stderr
    assert "hunter2" not in result.output


SETTINGS = {  # more cases, without a process each: tests/api/test_config.py
    "alias": (
        "defaults: &d {region: cn-north-4}\ntargets:\n  prod: *d\n",
        "reconciler.yaml:3:9: aliases (*d) are not allowed in a settings file",
    ),
    "infinite rate": (
        "targets:\n  prod: {region: cn-north-4, project_id: p, rate_limits: {list: .inf}}\n",
        "reconciler.yaml:2:65: targets.prod.rate_limits.list: .inf is not a finite number",
    ),
    "large": (
        "# " + "x" * (2 * 1024 * 1024) + "\n",
        "a settings file may be at most 1048576 bytes",
    ),
}


@pytest.mark.parametrize("case", list(SETTINGS))
def test_reconciler_yaml_gets_the_manifests_yaml_safety(workdir: Path, case: str) -> None:
    text, expected = SETTINGS[case]
    (workdir / "reconciler.yaml").write_text(text)
    result = cli(workdir, "plan", "manifests")
    assert result.returncode == 1, result.output
    assert expected in result.stderr, result.stderr
    assert result.max_rss_mb < 150
    assert result.wall_s < 10


def test_a_name_that_does_not_resolve_is_not_retried(workdir: Path) -> None:
    (workdir / "reconciler.yaml").write_text(
        "targets:\n  nowhere: {endpoint: 'http://metastudio.nonexistent.invalid', "
        f"project_id: {process.PROJECT_ID}, max_retries: 5}}\n"
    )
    result = cli(workdir, "plan", "manifests")
    assert result.returncode == 1, result.output
    assert "cannot resolve host metastudio.nonexistent.invalid" in result.stderr
    assert "not retried" in result.stderr
    assert result.wall_s < 5, "five retries with backoff would take longer"


def test_a_certificate_that_does_not_verify_is_not_retried(workdir: Path) -> None:
    with tls_service(workdir) as (endpoint, outcomes):
        (workdir / "reconciler.yaml").write_text(
            f"targets:\n  tls: {{endpoint: '{endpoint}', project_id: {process.PROJECT_ID}, "
            "max_retries: 5}\n"
        )
        result = cli(workdir, "plan", "manifests")
    assert result.returncode == 1, result.output
    assert "TLS certificate of 127.0.0.1 not accepted" in result.stderr, result.stderr
    assert "not retried" in result.stderr
    assert len(outcomes) == 1, outcomes
    assert result.wall_s < 5


def test_a_certificate_trusted_through_ssl_cert_file_is_accepted(workdir: Path) -> None:
    """The TLS context is built ahead of time on a thread (api/tls.py): it still honours
    ``SSL_CERT_FILE``, as httpx does, so a private CA works."""
    with tls_service(workdir) as (endpoint, outcomes):
        (workdir / "reconciler.yaml").write_text(
            f"targets:\n  tls: {{endpoint: '{endpoint}', project_id: {process.PROJECT_ID}, "
            "max_retries: 0}\n"
        )
        env = {**process.credentials_env(), "SSL_CERT_FILE": str(workdir / "cert.pem")}
        result = cli(workdir, "plan", "manifests", env=env)
    assert outcomes[:1] == ["handshake completed"], (outcomes, result.stderr)
    assert "not accepted" not in result.stderr, result.stderr
    assert result.returncode == 1, result.output  # the listener closes after the handshake


def test_https_to_a_plain_http_service_is_not_retried(
    workdir: Path, service: HostileService
) -> None:
    service.set_mode("normal")
    endpoint = service.endpoint.replace("http://", "https://")
    result = cli(workdir, "--endpoint", endpoint, "--project-id", "p", "plan", "manifests")
    assert result.returncode == 1, result.output
    assert "TLS handshake with 127.0.0.1 failed" in result.stderr, result.stderr
    assert result.wall_s < 5


def test_connection_failures_keep_their_bounded_retries(workdir: Path) -> None:
    """A refused connection may be a restart in progress: retried, bounded; on loopback
    with short waits (nothing listens there, the answer comes at once)."""
    port = process.free_port()
    (workdir / "reconciler.yaml").write_text(
        f"targets:\n  down: {{endpoint: 'http://127.0.0.1:{port}', "
        f"project_id: {process.PROJECT_ID}, max_retries: 1}}\n"
    )
    result = cli(workdir, "plan", "manifests")
    assert result.returncode == 1, result.output
    assert f"connection refused by 127.0.0.1:{port}" in result.stderr, result.stderr
    assert "after 2 attempts" in result.stderr
    assert "Warning: retried 1 request: 1 x connection refused" in result.stderr
    assert result.wall_s < 5
