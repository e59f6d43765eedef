"""The TLS context of every client in a run, built on a thread while the run starts.

Loading the CA bundle costs 20-40 ms of a start-up, and the C code that parses it lets other
threads run: so a command that talks to the service asks for the context before it imports its
own modules (:func:`prepare`), and the client picks it up, ready, when it connects
(:func:`verified_context`).  The context is what httpx builds for ``verify=True``: certifi's
bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set.  Only ``ssl`` and ``certifi`` are
imported, both before the thread starts, so that no import lock is held on it.
"""

from __future__ import annotations

import os
import ssl
import threading

import certifi

_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR")


def _settings() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) or None for name in _ENV)


def build_context(settings: tuple[str | None, ...]) -> ssl.SSLContext:
    """A verifying client context for the CA settings ``(SSL_CERT_FILE, SSL_CERT_DIR)``."""
    cert_file, cert_dir = settings
    if cert_file:
        return ssl.create_default_context(cafile=cert_file)
    if cert_dir:
        return ssl.create_default_context(capath=cert_dir)
    return ssl.create_default_context(cafile=certifi.where())


class _Prepared:
    """One context being built on a thread, for the settings of the moment it started."""

    def __init__(self) -> None:
        self.settings = _settings()
        self.context: ssl.SSLContext | None = None
        self.thread = threading.Thread(target=self._build, name="tls-context", daemon=True)
        self.thread.start()

    def _build(self) -> None:
        try:
            self.context = build_context(self.settings)
        except (OSError, ssl.SSLError, ValueError):  # built again by the caller, who sees it
            self.context = None


_prepared: _Prepared | None = None
_lock = threading.Lock()


def prepare() -> None:
    """Start building the context (once per process)."""
    global _prepared
    with _lock:
        if _prepared is None:
            _prepared = _Prepared()


def verified_context() -> ssl.SSLContext:
    """The verifying context: the prepared one when it was built for today's settings, else one
    built now (so a failure to load the CA files is raised here, where the client reports it)."""
    prepared = _prepared
    if prepared is not None:
        prepared.thread.join()
        if prepared.context is not None and prepared.settings == _settings():
            return prepared.context
    return build_context(_settings())
