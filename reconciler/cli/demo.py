"""``reconciler demo``: the whole job against the bundled emulator, on loopback only.

It sets up a folder as a user's manifests repository would look (the sample manifests, which
ship inside the package, a ``reconciler.yaml`` pointing at the emulator, the demo credentials
in ``demo.env``), starts the emulator seeded with the demo project (live state that differs
from the samples) and runs the real commands there, each as its own process: validate, plan
(with one manifest for an asset that does not exist), apply, plan again (no changes), an
out-of-band edit made through the emulator, and a drift report. It works from an installed
wheel in any folder; ``--keep`` leaves the emulator running to try more commands.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from importlib import resources
from pathlib import Path
from types import FrameType

import click

from reconciler.cli.extras import require_emulator
from reconciler.constants import MANIFEST_SUFFIXES
from reconciler.errors import ReconcilerError
from reconciler.importer import write_schema
from reconciler.manifest.discovery import manifest_files

# Declared in the demo's extra manifest, absent from the live project.
MISSING_ID = "d4c3b2a1-0f9e-4d8c-b7a6-958473625140"
# What "someone in the console" changes after the apply, for the drift report to find.
OUT_OF_BAND_EDIT = {"asset_name": "Product Intro Clip (final)", "tags": ["MARKETING", "DRAFT"]}
# The emulator's credentials for the demo: made up here, accepted only by this emulator.
DEMO_AK = "demo-access-key"
DEMO_SK = "demo-secret-key"

MISSING_MANIFEST = f"""\
# An asset that was deleted in the console but is still declared in git.
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: {MISSING_ID}
spec:
  asset_name: Retired Jingle
  asset_state: UNACTIVED
"""


class DemoError(ReconcilerError):
    """The demo could not set up its folder, or one of its steps did not end as expected."""


def _banner(text: str) -> None:
    click.echo()
    click.secho(f"==> {text}", bold=True)


def _explain(*lines: str) -> None:
    for line in lines:
        click.secho(f"   {line}", dim=True)


def _run(args: Sequence[str], cwd: Path, env: Mapping[str, str], expect: Sequence[int]) -> None:
    """Run one reconciler command as its own process; its exit code must be one expected."""
    shown = " ".join(["reconciler", *args])
    click.secho(f"$ {shown}", fg="cyan")
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", *args], cwd=cwd, env=dict(env), check=False
    )
    if done.returncode not in expect:
        wanted = " or ".join(map(str, expect))
        raise DemoError(f"demo step '{shown}' exited {done.returncode}, expected {wanted}")


def sample_manifests() -> dict[str, bytes]:
    """The sample manifests shipped in the package (a copy of the repository's manifests/)."""
    folder = resources.files("reconciler").joinpath("samples", "manifests")
    return {
        entry.name: entry.read_bytes()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(MANIFEST_SUFFIXES)
    }


def prepare_folder(folder: Path | None, manifests: Path | None) -> Path:
    """The demo's folder with its manifests copied in; a named folder must be new or empty."""
    if folder is None:
        work = Path(tempfile.mkdtemp(prefix="reconciler-demo-"))
    else:
        work = folder.resolve()
        if work.exists() and (not work.is_dir() or any(work.iterdir())):
            raise DemoError(f"{folder}: not an empty folder; name a new or empty one for the demo")
        work.mkdir(parents=True, exist_ok=True)
    if manifests is not None:
        files = {
            p.relative_to(manifests).as_posix(): p.read_bytes() for p in manifest_files(manifests)
        }
    else:
        files = sample_manifests()
    if not files:
        raise DemoError(f"{manifests}: no .yaml manifests to reconcile")
    for name, data in files.items():
        target = work / "manifests" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    # The samples' schema line (``$schema=manifest.schema.json``) resolves beside them.
    write_schema(work / "manifests")
    (work / "retired-jingle.yaml").write_text(MISSING_MANIFEST, encoding="utf-8")
    return work


def _wait_for_interrupt() -> None:
    """Block until Ctrl-C (or SIGTERM, treated the same)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path),
    help="Set the demo up in this new or empty folder (default: a new temporary folder).",
)
@click.option(
    "--manifests",
    "manifest_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Reconcile the manifests in this folder instead of the bundled samples.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Leave the emulator running at the end, until Ctrl-C, to try commands against it.",
)
def demo(folder: Path | None, manifest_dir: Path | None, keep: bool) -> None:
    """Plan, apply, plan, drift against the bundled emulator.

    What `make demo` runs, from any folder; nothing outside loopback is touched. Needs the
    emulator extra.

    \b
    Example:
      reconciler demo --dir demo --keep
    """
    require_emulator("demo")
    from reconciler.emulator.app import create_app
    from reconciler.emulator.config import DEFAULT_RATE_LIMITS, EmulatorConfig
    from reconciler.emulator.demo_seed import DEMO_PROJECT_ID, VIDEO_ID, demo_assets
    from reconciler.emulator.server import serve_in_background
    from reconciler.emulator.store import AssetStore

    work = prepare_folder(folder, manifest_dir)
    emulated = EmulatorConfig(
        project_id=DEMO_PROJECT_ID, ak=DEMO_AK, sk=DEMO_SK, rate_limits=dict(DEFAULT_RATE_LIMITS)
    )
    store = AssetStore()
    store.seed(demo_assets(), DEMO_PROJECT_ID, source="demo")
    with closing(store), serve_in_background(create_app(emulated, store)) as base_url:
        (work / "reconciler.yaml").write_text(
            "# The demo's emulator; its port changes with every run of reconciler demo.\n"
            "default_target: demo\n"
            "targets:\n"
            f"  demo: {{endpoint: '{base_url}', project_id: {DEMO_PROJECT_ID}}}\n",
            encoding="utf-8",
        )
        (work / "demo.env").write_text(
            "# The demo emulator's credentials (made up; accepted by nothing else).\n"
            f"export HUAWEICLOUD_SDK_AK={DEMO_AK}\n"
            f"export HUAWEICLOUD_SDK_SK={DEMO_SK}\n",
            encoding="utf-8",
        )
        # Only the demo's credentials: none a user's shell may hold reaches the steps.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_", "HW_"))}
        env.update(HUAWEICLOUD_SDK_AK=DEMO_AK, HUAWEICLOUD_SDK_SK=DEMO_SK)
        click.echo(f"Emulator listening on {base_url} (project {DEMO_PROJECT_ID}).")
        made = "a new temporary folder; --dir DIR for one of your own" if folder is None else ""
        click.echo(f"Working in {work}" + (f" ({made})" if made else ""))

        _banner("1. Validate the manifests (offline)")
        _run(["validate", "manifests"], work, env, expect=[0])

        _banner("2. Plan: live state differs from git; one declared asset no longer exists")
        _explain(
            f"retired-jingle.yaml declares asset {MISSING_ID},",
            "which the live project does not have (deleted in the console, still in git).",
            "Expect one error below for that asset alone, the others planned as usual, and",
            "exit code 1: that is how plan tells a pipeline a person is needed. The next",
            "steps leave that manifest out.",
        )
        _run(["plan", "manifests", "retired-jingle.yaml"], work, env, expect=[1])

        _banner("3. Apply the manifests")
        _run(["apply", "--auto-approve", "manifests"], work, env, expect=[0])

        _banner("4. Plan again: nothing left to do")
        _run(["plan", "--detailed-exitcode", "manifests"], work, env, expect=[0])

        _banner("5. Someone edits an asset in the console (out of band)")
        store.patch(VIDEO_ID, OUT_OF_BAND_EDIT)
        click.echo(f"Edited asset {VIDEO_ID} directly in the (emulated) service:")
        for field, value in OUT_OF_BAND_EDIT.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            click.echo(f"  {field}: {shown}")

        _banner("6. Scheduled drift report")
        _run(["drift", "--include-unmanaged", "manifests"], work, env, expect=[2])

        _banner(f"Done. The demo folder is {work}")
        for name, what in (
            ("manifests/", "the sample manifests, now applied, and their JSON Schema"),
            ("retired-jingle.yaml", "a manifest for an asset that does not exist"),
            ("reconciler.yaml", f"target 'demo': the emulator at {base_url}"),
            ("demo.env", "the emulator's demo credentials"),
        ):
            click.echo(f"  {name:<21} {what}")
        if not keep:
            click.echo()
            click.echo("The emulator stops now. To try commands against a running one:")
            click.echo("  reconciler demo --keep")
            return
        click.echo()
        click.echo(f"The emulator keeps running at {base_url}. In another terminal, try:")
        for line in (
            f"cd {shlex.quote(str(work))} && . ./demo.env",
            "reconciler plan manifests",
            "reconciler drift manifests --include-unmanaged --format markdown",
            "reconciler import --all --dir imported",
            "reconciler apply manifests",
        ):
            click.echo(f"  {line}")
        click.echo("Press Ctrl-C to stop the emulator.")
        sys.stdout.flush()
        _wait_for_interrupt()
        click.echo("Emulator stopped.")
