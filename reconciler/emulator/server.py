"""Serving the app with uvicorn: in the foreground (CLI) or on a background thread (demo, tests)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette

from reconciler.emulator.errors import EmulatorError


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free one.  Binding first means no race for the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it headers and body of a response meet Nagle and
    # delayed ACK, and every keep-alive request waits ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EmulatorError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(app: Starlette) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=5,
    )


def serve_forever(app: Starlette, sock: socket.socket) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM)."""
    uvicorn.Server(_uvicorn_config(app)).run(sockets=[sock])


class _PromptServer(uvicorn.Server):
    """uvicorn that notices ``should_exit`` within 10 ms instead of 100 ms (tests stop it often)."""

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            for _ in range(10):
                if self.should_exit:
                    break
                await asyncio.sleep(0.01)
            counter = (counter + 1) % 864000
            should_exit = await self.on_tick(counter)


class BackgroundServer:
    """uvicorn on a daemon thread; ``start`` returns once the socket accepts connections."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = bind(host, port)
        self.host, self.port = self._sock.getsockname()[:2]
        self._server = _PromptServer(_uvicorn_config(app))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True, name="emulator"
        )

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise EmulatorError("the emulator did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()


@contextmanager
def serve_in_background(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` on a background thread while the block runs; yields its base URL."""
    server = BackgroundServer(app, host, port)
    server.start()
    try:
        yield f"http://{server.host}:{server.port}"
    finally:
        server.stop()
