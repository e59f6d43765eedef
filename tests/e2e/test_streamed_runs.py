"""Every run over manifests reads live state while they load, and an invalid one stops it.

One repository of 1,200 manifests over two targets (``prod`` names itself in
``metadata.target``; ``staging`` is the default target), behind two emulators, each target
paced by the client at one list request per second.  In ``bad/`` the 901st file and the last
one are invalid.  For every command shape, the run exits 1 naming both files, sends no PUT, and
yet some reads reached the projects: they left before the last manifest was validated (a run
that loaded everything first sends nothing at all), and stopped at the first problem, so only
a handful were sent.  ``good/`` is the same repository, valid: planned over both targets (each
manifest reaches its own target), and applied to one, where the timestamps show the first read
before the end of the load and the write after it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_process import CLEARED, PtyProcess

from reconciler.emulator.testing import RunningEmulator, run_emulator

pytestmark = pytest.mark.e2e

N = 1200
MIDDLE = 900


def asset_id(i: int) -> str:
    return f"{'00000000' if i % 2 == 0 else '11111111'}-0000-4000-8000-{i:012d}"


def manifest(i: int) -> str:
    target = "  target: prod\n" if i % 2 == 0 else ""
    team = "a" if i % 3 == 0 else "b"
    name = "Renamed" if i in (2, 3) else f"Image {i}"
    return (
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
        f"metadata:\n  asset_id: {asset_id(i)}\n{target}  labels: {{team: {team}}}\n"
        f"spec:\n  asset_name: {name}\n"
    )


def live(i: int) -> dict[str, Any]:
    return {
        "asset_id": asset_id(i),
        "asset_name": f"Image {i}",
        "asset_type": "IMAGE",
        "asset_state": "ACTIVED",
    }


@dataclass
class Repo:
    root: Path
    prod: RunningEmulator
    staging: RunningEmulator
    environ: dict[str, str]

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.environ, **extra}

    def clear(self) -> None:
        self.prod.clear_requests()
        self.staging.clear_requests()

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            cwd=self.root,
            env=self.environ,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def reads(self, emu: RunningEmulator) -> list[dict[str, Any]]:
        return [r for r in emu.requests() if r.get("method") == "GET"]

    def puts(self) -> list[dict[str, Any]]:
        return [
            r for emu in (self.prod, self.staging) for r in emu.requests() if r["method"] == "PUT"
        ]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    root = tmp_path_factory.mktemp("streamed")
    for folder in ("good", "bad"):
        (root / folder).mkdir()
        for i in range(N):
            (root / folder / f"m{i:05d}.yaml").write_text(manifest(i), encoding="utf-8")
    (root / "bad" / f"m{MIDDLE:05d}.yaml").write_text(
        manifest(MIDDLE).replace(asset_id(MIDDLE), "../escape"), encoding="utf-8"
    )
    (root / "bad" / "zz-last.yaml").write_text(
        manifest(N) + "  no_such_field: 1\n", encoding="utf-8"
    )
    with ExitStack() as stack:
        prod = stack.enter_context(
            run_emulator(
                [live(i) for i in range(0, N, 2)],
                project_id="p-prod",
                ak="prod-ak",
                sk="prod-secret-key-0001",
            )
        )
        staging = stack.enter_context(
            run_emulator(
                [live(i) for i in range(1, N, 2)],
                project_id="p-staging",
                ak="staging-ak",
                sk="staging-secret-key-02",
            )
        )
        for name, rate in (("reconciler.yaml", 1), ("unpaced.yaml", 0)):
            pacing = f"rate_limits: {{list: {rate}, show: {rate}, update: {rate}}}, max_retries: 0"
            (root / name).write_text(
                "default_target: staging\n"
                "targets:\n"
                f"  prod: {{endpoint: '{prod.base_url}', project_id: p-prod, "
                f"credentials_env_prefix: PROD_, {pacing}}}\n"
                f"  staging: {{endpoint: '{staging.base_url}', project_id: p-staging, {pacing}}}\n",
                encoding="utf-8",
            )
        environ = {
            k: v for k, v in os.environ.items() if k not in CLEARED and not k.startswith("PROD_")
        }
        environ.update(
            PROD_HUAWEICLOUD_SDK_AK=prod.ak,
            PROD_HUAWEICLOUD_SDK_SK=prod.sk,
            HUAWEICLOUD_SDK_AK=staging.ak,
            HUAWEICLOUD_SDK_SK=staging.sk,
        )
        yield Repo(root, prod, staging, environ)


SHAPES = {
    "max-change-percent": (["plan", "bad", "--target", "prod", "--max-change-percent", "50"], 1),
    "selector": (["plan", "bad", "--target", "prod", "--selector", "team=a"], 1),
    "asset": (["plan", "bad", "--target", "prod", "--asset", asset_id(0)], 1),
    "two --target": (["plan", "bad", "--target", "prod", "--target", "staging"], 2),
    "targets from the manifests": (["plan", "bad"], 2),
    "apply": (["apply", "bad", "--auto-approve"], 2),
    "drift": (["drift", "bad"], 2),
}


def assert_stopped_early(repo: Repo, output: str, code: int, targets: int) -> None:
    """Exit 1 with both problems, no PUT, and a few reads to each target that was read."""
    assert code == 1, output
    assert "Traceback" not in output
    assert f"m{MIDDLE:05d}.yaml" in output and "zz-last.yaml" in output, output
    assert repo.puts() == []
    reads = [len(repo.reads(emu)) for emu in (repo.prod, repo.staging)[:targets]]
    assert all(reads), f"no read left while the manifests loaded: {reads}"
    assert sum(reads) <= 3 * targets, f"reads went on after a manifest was invalid: {reads}"


@pytest.mark.parametrize("shape", list(SHAPES))
def test_reads_start_while_loading_and_stop_at_an_invalid_manifest(repo: Repo, shape: str) -> None:
    args, targets = SHAPES[shape]
    repo.clear()
    result = repo.run(*args)
    assert_stopped_early(repo, result.stdout + result.stderr, result.returncode, targets)


def test_a_plan_on_a_terminal_with_its_counter_reads_while_loading(repo: Repo) -> None:
    repo.clear()
    session = PtyProcess(repo, "plan", "bad", "--target", "prod")  # type: ignore[arg-type]
    code, _ = session.finish()
    assert "Loading manifests..." in session.screen  # the progress line is on
    assert_stopped_early(repo, session.screen, code, 1)


def test_a_valid_plan_over_both_targets_routes_every_manifest_to_its_target(repo: Repo) -> None:
    repo.clear()
    result = repo.run(
        "--config", "unpaced.yaml", "plan", "good", "--format", "json", "--detailed-exitcode"
    )
    assert result.returncode == 2, result.stderr
    plans = json.loads(result.stdout)["targets"]
    assert [p["target"] for p in plans] == ["prod", "staging"]
    for plan, renamed in zip(plans, (asset_id(2), asset_id(3)), strict=True):
        rows = {row["asset_id"]: row["action"] for row in plan["assets"]}
        assert len(rows) == N // 2
        assert [a for a, action in rows.items() if action != "no-op"] == [renamed]
    assert repo.puts() == []
    # On a terminal the counter counts every target's assets once the load has given the total.
    session = PtyProcess(repo, "--config", "unpaced.yaml", "plan", "good")  # type: ignore[arg-type]
    code, _ = session.finish()
    assert code == 0, session.screen
    assert re.search(rf"\[{N}/{N}\] reading live assets, \d+\.\d s", session.screen)


def test_apply_reads_while_loading_and_writes_only_after_the_load(repo: Repo) -> None:
    """The timestamps a user sees: the first read reaches the project before the load has
    ended (the notice about the other target's manifests is logged when it ends), and the
    write comes after it."""
    repo.clear()
    try:
        result = repo.run(
            *("--config", "unpaced.yaml", "-v", "--log-format", "json"),
            *("apply", "good", "--target", "prod", "--auto-approve"),
        )
        assert result.returncode == 0, result.stderr
        logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        loaded = next(e["time"] for e in logs if "of targets other than prod" in e["message"])
        requests = repo.prod.requests()
        reads = [r["time"] for r in requests if r["method"] == "GET"]
        writes = [(r["time"], r["path"]) for r in requests if r["method"] == "PUT"]
        assert [path.rsplit("/", 1)[1] for _, path in writes] == [asset_id(2)]
        assert min(reads) < loaded < writes[0][0], (min(reads), loaded, writes)
    finally:
        repo.prod.store.seed([live(2)], "p-prod")  # as the other tests expect it
