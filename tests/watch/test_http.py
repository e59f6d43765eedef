"""/metrics and /healthz over a real socket."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reconciler.errors import ConfigError
from reconciler.watch.http import MetricsServer, parse_address


def test_addresses() -> None:
    assert parse_address("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_address(":9100") == ("0.0.0.0", 9100)
    assert parse_address("[::1]:9100") == ("::1", 9100)
    for bad in ("9100", "host:", "host:port", "h:70000"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_address(bad)


def test_serves_metrics_health_and_nothing_else() -> None:
    state: dict[str, Any] = {"ok": False}

    def health() -> tuple[bool, dict[str, Any]]:
        return state["ok"], {"status": "ok" if state["ok"] else "unhealthy"}

    server = MetricsServer("127.0.0.1:0", lambda: b"m_total 1.0\n", "text/plain", health)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        metrics = httpx.get(f"{base}/metrics")
        assert (metrics.status_code, metrics.text) == (200, "m_total 1.0\n")
        assert httpx.get(f"{base}/healthz").status_code == 503
        state["ok"] = True
        answer = httpx.get(f"{base}/healthz")
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
        assert httpx.get(f"{base}/other").status_code == 404
    finally:
        server.stop()


def test_a_busy_port_is_a_clear_error() -> None:
    first = MetricsServer("127.0.0.1:0", lambda: b"", "text/plain", lambda: (True, {}))
    try:
        with pytest.raises(ConfigError, match=f"127.0.0.1:{first.port}: cannot listen"):
            MetricsServer(f"127.0.0.1:{first.port}", lambda: b"", "text/plain", lambda: (True, {}))
    finally:
        first.stop()
