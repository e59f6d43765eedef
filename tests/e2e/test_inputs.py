"""Inputs a user can get wrong without noticing, end to end: the real CLI as a process against
the emulator on a loopback socket.

* Proxy settings httpx cannot use (a SOCKS proxy without its optional package, an ``ftp://``
  URL) are one error naming the variable, before any request, never a traceback.
* ``--timeout nan`` is a usage error.
* A credential with whitespace around it is refused, naming the variable, not trimmed.
* A name that differs only in Unicode normalisation (live NFD, manifest NFC) is marked and shown
  escaped in the text and Markdown plan and drift report, and apply still sends the manifest's
  exact string.
"""

from __future__ import annotations

import importlib.util
import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator.samples import asset_id as aid
from reconciler.emulator.samples import image
from reconciler.emulator.testing import run_emulator
from tests.e2e.cli_runner import Cli

pytestmark = pytest.mark.e2e

NFC = "Caf\u00e9 Sara"  # the manifest, as most editors save it
NFD = "Cafe\u0301 Sara"  # live, as a macOS file name or some input methods give it
PROXY_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    with run_emulator([image(1, asset_name=NFD, asset_description="d")]) as emu:
        runner = Cli(emu, tmp_path)
        for name in list(runner.env):
            if name.upper() in PROXY_NAMES:
                del runner.env[name]
        manifests = tmp_path / "manifests"
        manifests.mkdir()
        (manifests / "image.yaml").write_text(
            "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
            f"metadata:\n  asset_id: {aid(1)}\nspec:\n  asset_name: {NFC}\n",
            encoding="utf-8",
        )
        yield runner


def refused(cli: Cli, *args: str, never: str = "") -> str:
    """Run; assert exit 1, no traceback, no request sent and ``never`` nowhere in the output;
    the last stderr line."""
    result = cli.run(*args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert cli.emu.requests() == []
    if never:
        assert never not in result.stderr
    return result.stderr.strip().splitlines()[-1]


# --- proxies ---------------------------------------------------------------------------------

no_socksio = pytest.mark.skipif(
    importlib.util.find_spec("socksio") is not None,
    reason="httpx's SOCKS package is installed: SOCKS proxies are usable here",
)
SOCKS = (
    "is a SOCKS proxy, which needs the optional 'socksio' package (pip install 'httpx[socks]' "
    "in reconciler's environment); or use an http:// proxy, or unset {name}"
)


@no_socksio
@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("ALL_PROXY", "socks5://alice:pr0xy-secret@127.0.0.1:1080", "socks5://***@127.0.0.1:1080"),
        ("all_proxy", "socks5://127.0.0.1:1080", "socks5://127.0.0.1:1080"),
        ("HTTPS_PROXY", "socks5h://127.0.0.1:1080", "socks5h://127.0.0.1:1080"),
        ("https_proxy", "socks5h://127.0.0.1:1080", "socks5h://127.0.0.1:1080"),
        ("HTTP_PROXY", "socks5://127.0.0.1:1080", "socks5://127.0.0.1:1080"),
        ("http_proxy", "socks5://127.0.0.1:1080", "socks5://127.0.0.1:1080"),
    ],
)
def test_a_socks_proxy_without_its_package_is_one_error_naming_the_variable(
    cli: Cli, name: str, value: str, shown: str
) -> None:
    cli.env[name] = value
    line = refused(cli, "plan", never="pr0xy-secret")
    assert line == f"Error: {name}={shown} " + SOCKS.format(name=name)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HTTP_PROXY", "ftp://127.0.0.1:21"),
        ("http_proxy", "ftp://127.0.0.1:21"),
        ("HTTPS_PROXY", "ftp://127.0.0.1:21"),
        ("ALL_PROXY", "ftp://127.0.0.1:21"),
    ],
)
def test_an_unknown_proxy_scheme_is_one_error_naming_the_variable(
    cli: Cli, name: str, value: str
) -> None:
    cli.env[name] = value
    line = refused(cli, "plan")
    assert line == (
        f"Error: {name}={value}: unsupported proxy scheme 'ftp'; a proxy URL starts with "
        "http://, https://, socks5://, socks5h://"
    )


def test_a_no_proxy_entry_httpx_cannot_read_is_named(cli: Cli) -> None:
    cli.env.update(HTTPS_PROXY="http://127.0.0.1:3128", NO_PROXY="localhost,[::1]")
    line = refused(cli, "drift")
    assert line.startswith("Error: NO_PROXY: '[::1]' is not a host name, domain, IP address")


def test_no_proxy_star_turns_every_proxy_off_as_for_httpx(cli: Cli) -> None:
    cli.env.update(ALL_PROXY="socks5://127.0.0.1:1080", HTTP_PROXY="ftp://x", NO_PROXY="*")
    result = cli.run("plan")
    assert result.returncode == 0, result.stderr
    assert "1 to change" in result.stdout


# --- numbers and credentials -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "value"),
    [(("--timeout", "nan", "plan"), "nan"), (("plan", "--timeout", "inf"), "inf")],
)
def test_a_non_finite_timeout_is_a_usage_error(cli: Cli, args: tuple[str, ...], value: str) -> None:
    line = refused(cli, *args)
    assert line == f"Error: Invalid value for '--timeout': '{value}' is not a finite number"


@pytest.mark.parametrize(
    ("name", "pad", "where", "what"),
    [
        ("HUAWEICLOUD_SDK_AK", " {}", "before", "access key"),
        ("HUAWEICLOUD_SDK_SK", "{}\n", "after", "secret key"),
    ],
)
def test_a_credential_with_whitespace_around_it_is_refused(
    cli: Cli, name: str, pad: str, where: str, what: str
) -> None:
    secret = cli.env[name]
    cli.env[name] = pad.format(secret)
    line = refused(cli, "plan", never=secret)
    assert line == (
        f"Error: {name}: the {what} has whitespace (a space, tab or line break) {where} it; "
        f"set {name} to the {what} alone"
    )


# --- differences that print alike ------------------------------------------------------------


def test_a_name_differing_only_in_normalisation_is_marked_and_applied_exactly(cli: Cli) -> None:
    marked = (
        '~ asset_name = "Cafe\\u0301 Sara" -> "Caf\\u00e9 Sara" '
        "(differs only in Unicode normalisation)"
    )
    planned = cli.run("plan")
    assert planned.returncode == 0, planned.stderr
    assert marked in planned.stdout

    as_markdown = cli.run("plan", "--format", "markdown")
    assert as_markdown.returncode == 0, as_markdown.stderr
    assert f"!       {marked[2:]}" in as_markdown.stdout

    as_json = cli.run("plan", "--format", "json")
    (target,) = json.loads(as_json.stdout)["targets"]
    change = target["assets"][0]["changes"][0]
    assert (change["before"], change["after"]) == (NFD, NFC)

    drifted = cli.run("drift")
    assert drifted.returncode == 2, drifted.stderr
    assert "~ asset_name (differs only in Unicode normalisation)" in drifted.stdout
    assert 'manifest: "Caf\\u00e9 Sara"' in drifted.stdout
    assert 'live:     "Cafe\\u0301 Sara"' in drifted.stdout
    drift_md = cli.run("drift", "--format", "markdown")
    assert "(differs only in Unicode normalisation)" in drift_md.stdout
    assert "<code>&quot;Cafe&#92;u0301 Sara&quot;</code>" in drift_md.stdout

    cli.emu.clear_requests()
    applied = cli.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert cli.puts() == [(aid(1), {"asset_name": NFC})]
    stored = cli.emu.store.get(aid(1))
    assert stored is not None and stored["asset_name"] == NFC
    assert unicodedata.is_normalized("NFC", stored["asset_name"])
    again = cli.run("plan")
    assert again.returncode == 0 and "No changes." in again.stdout
