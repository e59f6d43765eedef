"""Driving ``reconciler`` as a real process (the ``demo_project`` fixture in conftest.py).

A :class:`DemoProject` is an emulator seeded with the demo assets and a work folder holding a
copy of ``manifests/``; ``run(*args)`` runs the console script there with the emulator's
environment and returns the finished process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
