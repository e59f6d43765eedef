"""Proxy settings from the environment: what httpx could not start with is one error naming the
variable (never a proxy password), checked before the client opens."""

from __future__ import annotations

import httpx
import pytest

from reconciler.api.auth import Credentials
from reconciler.api.client import MetaStudioClient
from reconciler.api.config import Target
from reconciler.api.proxy import check_proxy_environment, environment_proxies, redacted
from reconciler.errors import ConfigError
from reconciler.logs import redact

SOCKS_HINT = "needs the optional 'socksio' package (pip install 'httpx[socks]'"


@pytest.fixture(autouse=True)
def without_socksio(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a plain install (the package may be present on a developer's machine)."""
    monkeypatch.setattr("reconciler.api.proxy.socks_supported", lambda: False)


def refused(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        check_proxy_environment(env)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("name", "value", "shown", "words"),
    [
        (
            "ALL_PROXY",
            "socks5://u:s3cret-pw@127.0.0.1:1080",
            "socks5://***@127.0.0.1:1080",
            SOCKS_HINT,
        ),
        ("HTTPS_PROXY", "socks5h://proxy:1080", "socks5h://proxy:1080", SOCKS_HINT),
        ("https_proxy", "socks5://proxy:1080", "socks5://proxy:1080", SOCKS_HINT),
        ("HTTP_PROXY", "ftp://proxy:21", "ftp://proxy:21", "unsupported proxy scheme 'ftp'"),
        ("all_proxy", "socks4://proxy:1080", "socks4://proxy:1080", "unsupported proxy scheme"),
        ("HTTP_PROXY", "http://proxy:abc", "http://proxy:abc", "the port is not a number"),
        ("HTTP_PROXY", "http://proxy:70000", "http://proxy:70000", "the port is not a number"),
        ("HTTPS_PROXY", "http://", "http://", "names no host"),
        ("HTTPS_PROXY", "http://[::1", "http://[::1", "not a proxy URL httpx can read"),
    ],
)
def test_an_unusable_proxy_names_its_variable_and_what_would_work(
    name: str, value: str, shown: str, words: str
) -> None:
    message = refused({name: value})
    assert message.startswith(f"{name}={shown}")
    assert words in message
    if "socks" in value and "socks4" not in value:
        assert f"or unset {name}" in message and "http:// proxy" in message
    assert "s3cret-pw" not in message


def test_socks_passes_where_httpx_has_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("reconciler.api.proxy.socks_supported", lambda: True)
    check_proxy_environment({"ALL_PROXY": "socks5h://proxy:1080"})


def test_a_proxy_with_spaces_is_refused_without_showing_it() -> None:
    message = refused({"HTTPS_PROXY": " http://u:pw-1234@proxy:3128\n"})
    assert message.startswith("HTTPS_PROXY: the proxy URL contains spaces or control characters")
    assert "pw-1234" not in message


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HTTPS_PROXY": "http://proxy.example.com:3128"},
        {"https_proxy": "https://u:p@proxy:8443", "HTTP_PROXY": "proxy:3128"},
        {"ALL_PROXY": "socks5://proxy:1080", "NO_PROXY": "example.com, *"},
        {"HTTPS_PROXY": "ftp://ignored", "https_proxy": "http://proxy:3128"},  # lower case wins
        {"HTTP_PROXY": "ftp://ignored", "REQUEST_METHOD": "GET"},  # CGI: HTTP_PROXY not read
        {"NO_PROXY": "localhost,127.0.0.1,::1,10.0.0.0/8,.internal,https://x.test"},
        {"FTP_PROXY": "ftp://not-read-by-httpx"},
    ],
)
def test_settings_httpx_can_use_pass(env: dict[str, str]) -> None:
    check_proxy_environment(env)


def test_the_lower_case_spelling_wins_as_for_httpx() -> None:
    env = {"HTTPS_PROXY": "http://ok:3128", "https_proxy": "ftp://bad"}
    assert environment_proxies(env)["https"] == ("https_proxy", "ftp://bad")
    assert refused(env).startswith("https_proxy=ftp://bad")


def test_a_no_proxy_entry_httpx_cannot_read_is_named() -> None:
    message = refused({"NO_PROXY": "localhost,[::1]"})
    assert message == (
        "NO_PROXY: '[::1]' is not a host name, domain, IP address or URL (write an IPv6 address "
        "without brackets)"
    )


def test_redaction_hides_user_and_password() -> None:
    assert redacted("http://user:pw@proxy:3128/") == "http://***@proxy:3128/"
    assert redacted("user:pw@proxy:3128") == "***@proxy:3128"
    assert redacted("http://proxy:3128") == "http://proxy:3128"


def test_a_proxy_password_is_kept_out_of_logs() -> None:
    check_proxy_environment({"HTTPS_PROXY": "http://user:proxy-pass-991@proxy:3128"})
    assert redact("connecting via proxy-pass-991") == "connecting via ***"


async def test_the_client_checks_before_it_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    target = Target(name="t", region=None, project_id="p", endpoint="http://127.0.0.1:9")
    client = MetaStudioClient(target, Credentials(ak="ak", sk="sk"))
    with pytest.raises(ConfigError, match=r"ALL_PROXY=socks5://127\.0\.0\.1:1080 is a SOCKS proxy"):
        async with client:
            pass
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:3128")
    async with client:
        assert isinstance(client._http, httpx.AsyncClient)
