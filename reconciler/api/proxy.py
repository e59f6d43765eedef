"""Proxy settings from the environment, checked before the HTTP client starts.

The client reads ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` (any case; the
lower-case spelling wins) the way httpx does with ``trust_env``.  httpx builds a transport for
every proxy it finds when the client is created, so one it cannot use (a SOCKS proxy without
the optional ``socksio`` package, an ``ftp://`` URL, a port that is not a number, a ``NO_PROXY``
entry it cannot read) would stop the run with a traceback, whichever host the run talks to.
:func:`check_proxy_environment` turns each into one error that names the variable and says
what would work.  A proxy URL is shown without its ``user:password@``.  (On macOS and Windows
httpx also falls back on the system's proxy settings when no variable is set; only the
environment is checked here.)
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from reconciler.errors import ConfigError
from reconciler.escape import clean_text
from reconciler.logs import register_secret

SCHEMES = ("http", "https", "all")  # the ``<scheme>_proxy`` variables httpx reads
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")  # the URL schemes it can use
SOCKS_SCHEMES = ("socks5", "socks5h")


def environment_proxies(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``{"http" | "https" | "all" | "no": (variable name, value)}`` as the standard library's
    ``getproxies_environment`` (which httpx uses) picks them: any ``*_proxy`` name whatever its
    case, a lower-case name over the others, an empty lower-case one unsetting, and
    ``HTTP_PROXY`` ignored under CGI (``REQUEST_METHOD`` set)."""
    found: dict[str, tuple[str, str]] = {}
    for name, value in env.items():
        key = name.lower()
        if value and key.endswith("_proxy"):
            found[key[: -len("_proxy")]] = (name, value)
    if "REQUEST_METHOD" in env:
        found.pop("http", None)
    for name, value in env.items():
        if name.endswith("_proxy"):
            key = name.lower()[: -len("_proxy")]
            if value:
                found[key] = (name, value)
            else:
                found.pop(key, None)
    return found


def redacted(url: str) -> str:
    """``url`` for a message: any ``user:password@`` shown as ``***@``, invisible characters
    escaped."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return clean_text(f"{scheme}{sep}{rest}")


def check_proxy_environment(env: Mapping[str, str] | None = None) -> None:
    """Refuse, with a :class:`ConfigError` naming the variable, proxy settings the HTTP client
    could not start with; settings it can use pass unchanged (``NO_PROXY=*`` turns them all
    off, as it does for httpx)."""
    env = os.environ if env is None else env
    found = environment_proxies(env)
    no_proxy = found.get("no")
    if no_proxy is not None:
        entries = [entry.strip() for entry in no_proxy[1].split(",")]
        if "*" in entries:
            return
        for entry in filter(None, entries):
            _check_no_proxy_entry(no_proxy[0], entry)
    for scheme in SCHEMES:
        if scheme in found:
            _check_proxy(*found[scheme])


def _check_proxy(name: str, value: str) -> None:
    url = value if "://" in value else f"http://{value}"  # httpx reads a bare host as http
    shown = redacted(url)
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ConfigError(
            f"{name}: the proxy URL contains spaces or control characters; expected one like "
            "http://proxy.example.com:3128"
        )
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        raise ConfigError(f"{name}={shown}: not a proxy URL httpx can read") from None
    if parts.password:
        register_secret(parts.password)
    scheme = parts.scheme.lower()
    if scheme in SOCKS_SCHEMES and not socks_supported():
        raise ConfigError(
            f"{name}={shown} is a SOCKS proxy, which needs the optional 'socksio' package "
            "(pip install 'httpx[socks]' in reconciler's environment); or use an http:// proxy, "
            f"or unset {name}"
        )
    if scheme not in PROXY_SCHEMES:
        raise ConfigError(
            f"{name}={shown}: unsupported proxy scheme {clean_text(scheme or '(none)')!r}; "
            f"a proxy URL starts with {', '.join(s + '://' for s in PROXY_SCHEMES)}"
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name}={shown}: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ConfigError(f"{name}={shown}: the proxy URL names no host")
    if port == 0:
        raise ConfigError(f"{name}={shown}: the port is not a number from 1 to 65535")
    try:
        httpx.Proxy(url=url)
    except (ValueError, httpx.InvalidURL):  # anything else httpx would stop on
        raise ConfigError(f"{name}={shown}: not a proxy URL httpx can read") from None


def socks_supported() -> bool:
    """Whether httpx can talk to a SOCKS proxy here (its optional ``socksio`` package)."""
    return importlib.util.find_spec("socksio") is not None


def _check_no_proxy_entry(name: str, entry: str) -> None:
    """An entry httpx turns into a URL pattern the way it does, refused if that fails."""
    if "://" in entry:
        pattern = entry
    elif _is_ip(entry, ipaddress.IPv4Address):
        pattern = f"all://{entry}"
    elif _is_ip(entry, ipaddress.IPv6Address):
        pattern = f"all://[{entry}]"
    elif entry.lower() == "localhost":
        pattern = f"all://{entry}"
    else:
        pattern = f"all://*{entry}"
    try:
        httpx.URL(pattern)
    except (ValueError, httpx.InvalidURL):
        hint = " (write an IPv6 address without brackets)" if entry.startswith("[") else ""
        raise ConfigError(
            f"{name}: {clean_text(entry)!r} is not a host name, domain, IP address or URL{hint}"
        ) from None


def _is_ip(entry: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        kind(entry.split("/")[0])
    except ValueError:
        return False
    return True
