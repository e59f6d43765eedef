"""``/metrics`` and ``/healthz`` over HTTP, on a thread beside the watch loop.

The standard library's threading HTTP server is enough for a scrape every few seconds and keeps
``reconciler watch`` free of a web framework.  Health is decided by the watch loop (a callable
returning the status and a small JSON body); this module only serves it.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from reconciler.errors import ConfigError

log = logging.getLogger(__name__)

Health = Callable[[], tuple[bool, dict[str, Any]]]


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``:9100`` for every interface, ``[::1]:9100`` for IPv6) as (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--metrics-addr {text!r} is not HOST:PORT (e.g. 127.0.0.1:9100)")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        metrics: Callable[[], bytes],
        content_type: str,
        health: Health,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.metrics = metrics
        self.content_type = content_type
        self.health = health


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.server.content_type, self.server.metrics())
        elif path in ("/healthz", "/health"):
            ok, detail = self.server.health()
            body = json.dumps(detail, sort_keys=True).encode() + b"\n"
            self._send(200 if ok else 503, "application/json", body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics server: " + format, *args)


class MetricsServer:
    """Serve until :meth:`stop`; binding happens in the constructor, so a busy port fails early."""

    def __init__(
        self, address: str, metrics: Callable[[], bytes], content_type: str, health: Health
    ) -> None:
        host, port = parse_address(address)
        try:
            self._server = _Server((host, port), metrics, content_type, health)
        except OSError as exc:
            raise ConfigError(f"--metrics-addr {address}: cannot listen: {exc.strerror}") from None
        bound = self._server.server_address
        self.host: str = str(bound[0])
        self.port: int = int(bound[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="metrics",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
