"""The TLS context built ahead of time is the one httpx would build, for today's settings."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from reconciler.api import tls


def test_the_prepared_context_verifies_certificates_and_host_names() -> None:
    tls.prepare()
    context = tls.verified_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert tls.verified_context() is context  # built once, shared by every client


def test_ca_settings_changed_after_preparing_are_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls.prepare()
    missing = tmp_path / "no-such-ca.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(missing))
    with pytest.raises(FileNotFoundError):  # what httpx raises for the same setting
        tls.verified_context()
