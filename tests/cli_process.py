"""Driving ``reconciler`` as a real process (the ``demo_project`` fixture in conftest.py).

A :class:`DemoProject` is an emulator seeded with the demo assets and a work folder holding a
copy of ``manifests/``; ``run(*args)`` runs the console script there with the emulator's
environment and returns the finished process.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reconciler.emulator.demo_seed import demo_assets
from reconciler.emulator.testing import RunningEmulator, run_emulator

REPO = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("reconciler"))
CLEARED = (
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "HUAWEICLOUD_SDK_PROJECT_ID",
    "HW_ACCESS_KEY",
    "HW_SECRET_KEY",
    "HW_SECURITY_TOKEN",
    "HW_PROJECT_ID",
    "HW_AUTH_TOKEN",
    "HW_REGION_NAME",
    "NO_COLOR",
    "GITHUB_SHA",
    "GITHUB_RUN_ID",
    "CI_COMMIT_SHA",
    "CI_JOB_URL",
)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(extra or {})
    return env


@dataclass
class DemoProject:
    emulator: RunningEmulator
    root: Path

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env({**self.emulator.env(), **extra})

    def run(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CONSOLE_SCRIPT, *args],
            cwd=self.root,
            env=env if env is not None else self.env(),
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@contextmanager
def demo_project_in(root: Path) -> Iterator[DemoProject]:
    shutil.copytree(REPO / "manifests", root / "manifests")
    with run_emulator(demo_assets("p-test")) as emu:
        yield DemoProject(emu, root)


@contextmanager
def fresh_project(
    root: Path, assets: list[dict[str, object]] | None = None
) -> Iterator[DemoProject]:
    """Like :func:`demo_project_in`, but for one test that changes the live state."""
    shutil.copytree(REPO / "manifests", root / "manifests")
    with run_emulator(assets if assets is not None else demo_assets("p-test")) as emu:
        yield DemoProject(emu, root)


class PtyProcess:
    """The console script on a pseudo-terminal (stdin and stderr, and stdout unless it is sent
    to a file), so that it sees a person at a terminal: prompts, colour and progress appear."""

    def __init__(
        self, project: DemoProject, *args: str, stdout_file: Path | None = None, **env: str
    ) -> None:
        self._master, slave = os.openpty()
        os.set_blocking(self._master, False)
        self._stdout_file = stdout_file
        stdout = stdout_file.open("wb") if stdout_file is not None else slave
        self.proc = subprocess.Popen(
            [CONSOLE_SCRIPT, *args],
            cwd=project.root,
            env=project.env(TERM="xterm", COLUMNS="120", **env),
            stdin=slave,
            stdout=stdout,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        if stdout_file is not None:
            stdout.close()  # type: ignore[union-attr]
        self.screen = ""  # everything written to the terminal so far

    def _drain(self, wait: float) -> bool:
        """Read what the terminal has within ``wait`` seconds; False once it is closed."""
        ready, _, _ = select.select([self._master], [], [], wait)
        if not ready:
            return True
        try:
            chunk = os.read(self._master, 65536)
        except BlockingIOError:
            return True
        except OSError:  # EIO: every writer closed the terminal
            return False
        self.screen += chunk.decode("utf-8", "replace")
        return bool(chunk)

    def read_until(self, text: str, timeout: float = 60) -> str:
        """Read the terminal until ``text`` appears (AssertionError on timeout or exit)."""
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear; the terminal shows:\n{self.screen}")
            if not self._drain(0.1) and text not in self.screen:
                raise AssertionError(f"exited before {text!r}; the terminal shows:\n{self.screen}")
        return self.screen

    def type(self, line: str) -> None:
        os.write(self._master, line.encode() + b"\n")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Read the terminal until the process exits; (exit code, stdout sent to the file)."""
        deadline = time.monotonic() + timeout
        while self._drain(0.05) and (self.proc.poll() is None or self._drain(0)):
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"did not exit; the terminal shows:\n{self.screen}")
        code = self.proc.wait(timeout)
        os.close(self._master)
        out = self._stdout_file.read_text() if self._stdout_file is not None else ""
        return code, out
