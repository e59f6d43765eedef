"""``reconciler demo`` as a user runs it: any folder, its own manifests, ``--keep``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from reconciler.cli.demo import sample_manifests

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_the_packaged_samples_are_the_repositorys_manifests() -> None:
    repository = {p.name: p.read_bytes() for p in sorted((ROOT / "manifests").glob("*.yaml"))}
    assert sample_manifests() == repository, "copy manifests/*.yaml to reconciler/samples/"


def demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "demo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_demo_refuses_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    done = demo("--dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    assert "not an empty folder" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_the_demo_runs_anywhere_and_keep_leaves_the_emulator_until_ctrl_c(
    tmp_path: Path,
) -> None:
    # One run for both (a demo takes seconds): from a folder that is not the checkout, into a
    # relative --dir, then kept running.
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    folder = (elsewhere / "the-demo").resolve()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "demo", "--keep", "--dir", "the-demo"],
        cwd=elsewhere,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        output = "".join(lines)
        assert "Press Ctrl-C to stop the emulator." in output, output[-2000:]
        assert "Apply complete! 4 changed, 0 failed." in output
        # The error it shows on purpose is explained before it appears, in words, not data.
        explained = output.split("==> 2.", 1)[1].split("$ reconciler", 1)[0]
        assert "Expect one error below" in explained and "exit code 1" in explained
        assert "Error: 1 asset could not be planned" in output
        assert not re.search(r"[{\[]'|\w': '", output), "Python data was printed"
        assert "  tags: MARKETING, DRAFT\n" in output
        assert f"The demo folder is {folder}" in output
        copied = sorted(p.name for p in (folder / "manifests").iterdir())
        assert copied == sorted([*sample_manifests(), "manifest.schema.json"])
        # Each sample's editor schema line resolves in the demo folder.
        for name in sample_manifests():
            first = (folder / "manifests" / name).read_text(encoding="utf-8").splitlines()[0]
            reference = first.removeprefix("# yaml-language-server: $schema=")
            assert (folder / "manifests" / reference).is_file(), first
        assert f"Working in {folder}\n" in output  # a folder of the user's: no note
        assert {"reconciler.yaml", "demo.env", "retired-jingle.yaml"} <= {
            p.name for p in folder.iterdir()
        }
        url = re.search(r"keeps running at (http://\S+)\.", output)
        assert url, output[-2000:]
        # The commands it prints work in that folder, with the credentials of demo.env.
        assert f"cd {folder.resolve()} && . ./demo.env" in output
        script = ". ./demo.env && reconciler plan --detailed-exitcode manifests"
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        plan = subprocess.run(
            ["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True, timeout=60
        )
        assert plan.returncode == 2, plan.stdout + plan.stderr  # the out-of-band edit
        assert "Product Intro Clip (final)" in plan.stdout

        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0, rest
        assert "Emulator stopped." in rest
        with pytest.raises(httpx.TransportError):
            httpx.get(url[1], timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_demo_does_not_run_on_the_test_harness(tmp_path: Path) -> None:
    """The shipped demo serves the emulator itself; ``emulator.testing`` is for tests only."""
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
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Drift: 1 drifted" in done.stdout
    # Where it worked is said first and last: a new temporary folder unless --dir names one.
    working = re.search(
        r"^Working in (\S+) \(a new temporary folder; --dir DIR for one of", done.stdout, re.M
    )
    assert working, done.stdout[:500]
    assert f"==> Done. The demo folder is {working[1]}" in done.stdout
    assert (Path(working[1]) / "manifests" / "manifest.schema.json").is_file()
