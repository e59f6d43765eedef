"""Every shell command of README.md's "Use" section, run as written, in order, against the
emulator: the README cannot promise a command that does not work.

The commands run in bash from a folder holding the sample manifests, with the emulator seeded
with the demo project (live state that differs from them).  Only what needs the network is
pointed elsewhere, the way a user would: the SDK's per-region endpoint variables
(``HUAWEICLOUD_SDK_REGION_METASTUDIO_<REGION>``) send each region the README names to the
emulator, the ``...`` of the credentials become the emulator's, the metrics port is a free
one, and ``$HOME`` is a scratch folder (for the fish completion file).  ``watch`` runs until its
first cycle is reported, then is stopped with Ctrl-C as the README says.  zsh and fish are not
installed here: their completion scripts are generated and checked, not sourced.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator.demo_seed import DEMO_PROJECT_ID, demo_assets
from reconciler.emulator.testing import RunningEmulator, run_emulator

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # where the `reconciler` console script is installed

# Exit codes the README's commands end with on the demo project, in order of appearance; any
# command not named here must exit 0.
EXPECTED_EXIT = {"reconciler drift": (0, 2)}


def use_commands(readme: str) -> list[str]:
    """The command lines of the ```sh blocks of the "Use" section, comments stripped."""
    section = readme.split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with run_emulator(demo_assets(), project_id=DEMO_PROJECT_ID) as emu:
        yield emu


def test_the_use_section_lists_the_commands_it_documents() -> None:
    commands = use_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    verbs = {c.split()[1] for c in commands if c.startswith("reconciler ")}
    assert {"validate", "plan", "show", "apply", "drift", "import", "watch", "schema"} <= verbs
    assert any(c.startswith("export HUAWEICLOUD_SDK_AK=") for c in commands)


def test_every_command_of_the_use_section_works_as_written(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "manifests", work / "manifests")
    home = tmp_path / "home"
    (home / ".config" / "fish" / "completions").mkdir(parents=True)  # as fish leaves it
    commands = use_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    regions = set(re.findall(r"\b([a-z]{2}-[a-z]+-\d+)\b", " ".join(commands)))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HUAWEICLOUD_", "HW_", "RECONCILER_")) and "proxy" not in k.lower()
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        **{
            f"HUAWEICLOUD_SDK_REGION_METASTUDIO_{r.upper().replace('-', '_')}": emu.base_url
            for r in regions
        },
    )
    stand_ins = {
        "HUAWEICLOUD_SDK_AK": emu.ak,
        "HUAWEICLOUD_SDK_SK": emu.sk,
        "HUAWEICLOUD_SDK_PROJECT_ID": emu.project_id,
    }
    ran: list[str] = []
    for command in commands:
        if command.startswith("export "):
            for assignment in command.split()[1:]:
                name, _, value = assignment.partition("=")
                env[name] = stand_ins[name] if value == "..." else value
            ran.append(command)
            continue
        if " watch " in f" {command} ":
            _watch_until_first_cycle(command, work, env)
            ran.append(command)
            continue
        script = command
        if command.startswith("eval ") and ("zsh" in command or "fish" in command):
            script = command.removeprefix('eval "$(').removesuffix(')"')  # generate, check
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        allowed = next(
            (codes for prefix, codes in EXPECTED_EXIT.items() if command.startswith(prefix)), (0,)
        )
        assert done.returncode in allowed, f"$ {command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"$ {command}\n{done.stderr}"
        assert "Warning" not in done.stderr, f"$ {command}\n{done.stderr}"
        if script != command:
            assert "compdef" in done.stdout or "complete " in done.stdout, done.stdout[:300]
        ran.append(command)
    assert ran == commands
    # What the commands left behind is what the README says they leave.
    assert (work / "plan.json").is_file()
    assert (work / "manifest.schema.json").read_text(encoding="utf-8").startswith("{")
    assert (home / ".config" / "fish" / "completions" / "reconciler.fish").stat().st_size > 0
    assert any(e["method"] == "PUT" for e in emu.requests()), "apply plan.json sent nothing"


def _watch_until_first_cycle(command: str, cwd: Path, env: dict[str, str]) -> None:
    """Run a ``watch`` line as written (on a free metrics port) until its first cycle is
    logged, then stop it with Ctrl-C: it must exit 0."""
    command = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{free_port()}", command)
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if "cycle 1:" in line:
                break
        assert any("cycle 1:" in line for line in seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        _out, rest = proc.communicate(timeout=30)
        assert proc.returncode == 0, "".join(seen) + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
