"""Without the emulator extra: the commands that need it say how to install it and exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import __version__

ROOT = Path(__file__).resolve().parents[2]
# Runs the CLI as if starlette and uvicorn were not installed (a plain install).
WITHOUT_WEB_STACK = """
import sys
from importlib.abc import MetaPathFinder

class Absent(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("starlette", "uvicorn"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
sys.argv[0] = "reconciler"
from reconciler.cli.main import main
main()
"""


def lean(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_WEB_STACK, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "command"),
    [(("emulator", "serve", "--port", "0"), "emulator serve"), (("demo",), "demo")],
)
def test_missing_extra_names_the_install_command(args: tuple[str, ...], command: str) -> None:
    done = lean(*args)
    assert done.returncode == 1
    assert f"'reconciler {command}' needs the emulator extra" in done.stderr
    assert "missing: starlette, uvicorn" in done.stderr
    assert f"-m pip install 'metastudio-reconciler[emulator]=={__version__}'" in done.stderr
    assert sys.executable in done.stderr  # this environment's pip, not whichever is first
    assert "Traceback" not in done.stderr


def test_the_rest_works_without_the_extra() -> None:
    assert lean("emulator", "serve", "--help").returncode == 0
    assert lean("demo", "--help").returncode == 0
    done = lean("validate", "manifests")
    assert done.returncode == 0, done.stderr
