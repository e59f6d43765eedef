"""A hostile MetaStudio: a small HTTP server on 127.0.0.1 that answers the list and show APIs the
way a broken or malicious service could.

Every mode is a real socket answer, generated as it is sent (the 200 MB body is never held in
memory), and every loop in it is bounded: the drip stops after :data:`DRIP_SECONDS` bytes, a
connection the client closed ends its handler, and the server shuts itself down after
:data:`LIFETIME_SECONDS` even if a test forgets to.

Modes (``HostileService.mode``):

- ``normal``: the assets asked for, as the service would send them;
- ``deep``: an asset nested 100,000 levels deep;
- ``huge-count``: ``count`` is a billion; pages after the first are empty;
- ``repeat``: ``count`` is a billion and every page is the same full page;
- ``drip``: headers at once, then the body one byte a second;
- ``big``: a 200 MB body without ``Content-Length``, generated while it is sent;
- ``big-declared``: the same, announced with its ``Content-Length``;
- ``nan``: the first asset asked for holds NaN and Infinity;
- ``names``: asset names and error messages with escape sequences and newlines;
- ``bad-ids``: besides the assets asked for, assets whose ids are path-like or hold control
  characters, and one holding NaN;
- ``echo``: a 400 whose message repeats the request's credentials, escaped as repr, JSON and
  URL encoding would escape them.

:func:`tls_service` is a TLS listener with a self-signed certificate, for verification failures.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

MiB = 1024 * 1024
BIG_BYTES = 200 * MiB
DRIP_SECONDS = 60
LIFETIME_SECONDS = 180
DEPTH = 100_000
EVIL_NAME = "\x1b[31mEvil\x1b[0m\r\nPlan: 0 to change.\x07"
MODES = (
    "normal",
    "deep",
    "huge-count",
    "repeat",
    "drip",
    "big",
    "big-declared",
    "nan",
    "names",
    "bad-ids",
    "echo",
)
BAD_IDS = ("../../etc/cron.d/x", "id\x1b[2Jwith-escape", "a/b")


def asset(asset_id: str, **fields: Any) -> dict[str, Any]:
    """A live asset as the list API returns it (a voice model, which has few required fields)."""
    return {
        "asset_id": asset_id,
        "asset_name": f"Asset {asset_id}",
        "asset_type": "VOICE_MODEL",
        "asset_state": "ACTIVED",
        "tags": ["NEWS"],
        "update_time": "2026-01-01T00:00:00Z",
        **fields,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on what the client prints, not on this."""

    def do_GET(self) -> None:
        service = self.server.service
        service.requests += 1
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        ids = query.get("asset_id", [])
        offset = int(query.get("offset", ["0"])[0])
        is_list = url.path.rstrip("/").endswith("/digital-assets")
        if not is_list:
            ids = [url.path.rstrip("/").rsplit("/", 1)[-1]]
        wanted = ids or service.ids
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
            getattr(self, "_" + service.mode.replace("-", "_"))(is_list, wanted, offset)

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._send_json(400, {"error_code": "MSS.00000000", "error_msg": EVIL_NAME})

    # --- answers ------------------------------------------------------------------------

    def _send_json(self, status: int, data: Any) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", "hostile-1")
        self.end_headers()
        self.wfile.write(body)

    def _page(self, is_list: bool, assets: list[dict[str, Any]], count: int | None = None) -> None:
        if is_list:
            self._send_json(
                200, {"count": len(assets) if count is None else count, "assets": assets}
            )
        elif assets:
            self._send_json(200, assets[0])
        else:
            self._send_json(400, {"error_code": "MSS.10001001", "error_msg": "not found"})

    def _normal(self, is_list: bool, wanted: list[str], offset: int) -> None:
        self._page(is_list, [asset(a) for a in wanted] if offset == 0 else [])

    def _deep(self, is_list: bool, wanted: list[str], offset: int) -> None:
        inner = "[" * DEPTH + "]" * DEPTH
        one = json.dumps(asset(wanted[0]))[:-1] + f', "asset_extra_meta": {inner}}}'
        body = (f'{{"count": 1, "assets": [{one}]}}' if is_list else one).encode()
        self._raw(body)

    def _huge_count(self, is_list: bool, wanted: list[str], offset: int) -> None:
        self._page(is_list, [asset(a) for a in wanted] if offset == 0 else [], count=10**9)

    def _repeat(self, is_list: bool, wanted: list[str], offset: int) -> None:
        page = [asset(f"repeat-{i:03d}") for i in range(100)]
        self._page(is_list, page, count=10**9)

    def _nan(self, is_list: bool, wanted: list[str], offset: int) -> None:
        assets = [asset(a) for a in wanted] if offset == 0 else []
        if assets:
            assets[0]["asset_order"] = float("nan")
            assets[0]["asset_extra_meta"] = {"voice_model_meta": {"speed": float("inf")}}
        body = json.dumps({"count": len(assets), "assets": assets} if is_list else assets[0])
        self._raw(body.encode())

    def _names(self, is_list: bool, wanted: list[str], offset: int) -> None:
        self._page(is_list, [asset(a, asset_name=EVIL_NAME) for a in wanted] if offset == 0 else [])

    def _bad_ids(self, is_list: bool, wanted: list[str], offset: int) -> None:
        if offset:
            return self._page(is_list, [])
        assets = [asset(a) for a in wanted] + [asset(a) for a in BAD_IDS]
        assets.append(asset("nan-1", asset_order=float("nan")))
        self._raw(json.dumps({"count": len(assets), "assets": assets}).encode())

    def _echo(self, is_list: bool, wanted: list[str], offset: int) -> None:
        secrets = [
            v for k, v in self.headers.items() if k.lower() in ("x-auth-token", "x-security-token")
        ]
        shown = " ".join(f"{s!r} {json.dumps(s)} {quote(s, safe='')}" for s in secrets)
        self._send_json(400, {"error_code": "MSS.00000001", "error_msg": f"bad token {shown}"})

    def _raw(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, is_list: bool, wanted: list[str], offset: int) -> None:
        body = json.dumps({"count": 1, "assets": [asset(wanted[0])]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for i in range(min(DRIP_SECONDS, len(body))):
            if self.server.service.stopping.wait(1.0):
                return
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()

    def _big(self, is_list: bool, wanted: list[str], offset: int, declared: bool = False) -> None:
        head = json.dumps({"count": 1, "assets": [asset(wanted[0])]})[:-3].encode()
        head += b', "asset_description": "'
        tail = b'"}]}'
        filler = b"x" * (256 * 1024)
        rounds, rest = divmod(BIG_BYTES - len(head) - len(tail), len(filler))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if declared:
            self.send_header("Content-Length", str(BIG_BYTES))
        else:
            self.send_header("Connection", "close")  # the end of the body is the end of the stream
            self.close_connection = True
        self.end_headers()
        self.wfile.write(head)
        for _ in range(rounds):
            if self.server.service.stopping.is_set():
                return
            self.wfile.write(filler)
        self.wfile.write(b"x" * rest + tail)

    def _big_declared(self, is_list: bool, wanted: list[str], offset: int) -> None:
        self._big(is_list, wanted, offset, declared=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    service: HostileService


class HostileService:
    """The server and its switchable mode; ``ids`` are what a list without ids returns."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.mode = "normal"
        self.requests = 0
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.service = self
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        timer = threading.Timer(LIFETIME_SECONDS, self.stop)
        timer.daemon = True
        timer.start()
        try:
            self._server.serve_forever(poll_interval=0.05)
        finally:
            timer.cancel()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.requests = 0


@contextlib.contextmanager
def hostile_service(ids: list[str]) -> Iterator[HostileService]:
    service = HostileService(ids)
    service.start()
    try:
        yield service
    finally:
        service.stop()
        started = time.monotonic()
        service._thread.join(timeout=5)
        assert time.monotonic() - started < 5, "the hostile service did not stop"


@contextlib.contextmanager
def tls_service(workdir: Path) -> Iterator[tuple[str, list[str]]]:
    """A TLS listener on 127.0.0.1 with a fresh self-signed certificate: (endpoint, the outcome
    of each connection).  It accepts at most 20 connections and stops with the block."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is needed to make a test certificate")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    outcomes: list[str] = []
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set() and len(outcomes) < 20:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    outcomes.append("handshake completed")
            except (ssl.SSLError, OSError) as exc:
                outcomes.append(type(exc).__name__)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}", outcomes
    finally:
        stopping.set()
        thread.join(timeout=5)
        listener.close()
