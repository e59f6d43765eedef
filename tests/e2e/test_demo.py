"""``reconciler demo`` runs the whole job against the bundled emulator, not the test harness."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_every_step_without_the_test_harness() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_", "HW_"))}
    # Fail the demo if anything imports the test harness (it would pull in the client too).
    probe = (
        "import sys, runpy\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'reconciler.emulator.testing':\n"
        "            raise ImportError('the demo must not use the test harness')\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['reconciler', 'demo']\n"
        "runpy.run_module('reconciler', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply complete!" in done.stdout
    assert "Drift: 1 drifted" in done.stdout
