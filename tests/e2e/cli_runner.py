"""Run ``python -m reconciler`` as a user does, as a real process, against one emulator."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.emulator.testing import RunningEmulator


class Cli:
    """Runs ``python -m reconciler`` against one emulator from a scratch working directory."""

    def __init__(self, emu: RunningEmulator, cwd: Path) -> None:
        self.emu = emu
        self.cwd = cwd
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HUAWEICLOUD_", "HW_", "NO_COLOR"))
        }
        self.env.update(
            HUAWEICLOUD_SDK_AK=emu.ak,
            HUAWEICLOUD_SDK_SK=emu.sk,
            HUAWEICLOUD_SDK_PROJECT_ID=emu.project_id,
        )

    def argv(self, *args: str, project_id: str | None = None) -> list[str]:
        return [
            sys.executable,
            "-m",
            "reconciler",
            "--endpoint",
            self.emu.base_url,
            "--project-id",
            project_id or self.emu.project_id,
            *args,
        ]

    def run(
        self, *args: str, project_id: str | None = None, stdin: Any = subprocess.DEVNULL
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args, project_id=project_id),
            cwd=self.cwd,
            env=self.env,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def puts(self) -> list[tuple[str, Any]]:
        return [
            (e["path"].rsplit("/", 1)[1], e["body"])
            for e in self.emu.requests()
            if e["method"] == "PUT"
        ]

    def run_on_terminal(
        self,
        *args: str,
        answer: str,
        wait_for: str | None = None,
        then: Callable[[], None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run with stdin on a pseudo-terminal and type ``answer`` at the prompt.

        With ``wait_for``, ``then()`` is called once that text appears on stderr, before the
        answer is typed (e.g. an out-of-band edit made while the prompt waits).
        """
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen(
                self.argv(*args),
                cwd=self.cwd,
                env=self.env,
                stdin=slave,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            os.close(slave)
            seen = self._read_until(proc, wait_for) if wait_for is not None else b""
            if then is not None:
                then()
            os.write(master, answer.encode() + b"\n")
            out, err = proc.communicate(timeout=120)
        finally:
            os.close(master)
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, out.decode(), (seen + err).decode()
        )

    @staticmethod
    def _read_until(proc: subprocess.Popen[bytes], text: str) -> bytes:
        assert proc.stderr is not None
        seen = b""
        deadline = time.monotonic() + 60
        while text.encode() not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.1)
            if ready:
                chunk = os.read(proc.stderr.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
        assert text.encode() in seen, seen.decode(errors="replace")
        return seen

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start a run in the background (stdin closed)."""
        return subprocess.Popen(
            self.argv(*args),
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
