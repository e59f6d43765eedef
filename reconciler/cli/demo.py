"""``reconciler demo``: the whole job against the bundled emulator, on loopback only.

It starts the emulator seeded with the demo project (live state that differs from
``manifests/``), then runs the real commands as a user would, each as its own process:
validate, plan (with one manifest for an asset that does not exist), apply, plan again (no
changes), an out-of-band edit made through the emulator, and a drift report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.emulator.config import DEFAULT_RATE_LIMITS
from reconciler.emulator.demo_seed import DEMO_PROJECT_ID, VIDEO_ID, demo_assets
from reconciler.emulator.testing import run_emulator
from reconciler.errors import ReconcilerError

# Declared in the demo's extra manifest, absent from the live project.
MISSING_ID = "d4c3b2a1-0f9e-4d8c-b7a6-958473625140"
# What "someone in the console" changes after the apply, for the drift report to find.
OUT_OF_BAND_ID = VIDEO_ID
OUT_OF_BAND_EDIT = {"asset_name": "Product Intro Clip (final)", "tags": ["MARKETING", "DRAFT"]}

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


def _banner(text: str) -> None:
    click.echo()
    click.secho(f"==> {text}", bold=True)


def _run(args: Sequence[str], env: dict[str, str], expect: Sequence[int]) -> None:
    """Run one reconciler command as its own process; its exit code must be one expected."""
    shown = " ".join(["reconciler", *args])
    click.secho(f"$ {shown}", fg="cyan")
    done = subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, check=False)
    if done.returncode not in expect:
        wanted = " or ".join(map(str, expect))
        raise ReconcilerError(f"demo step '{shown}' exited {done.returncode}, expected {wanted}")


@click.command()
@click.option(
    "--manifests",
    "manifest_dir",
    default="manifests",
    show_default=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The example manifests to reconcile.",
)
def demo(manifest_dir: Path) -> None:
    """Plan, apply, plan, drift against the bundled emulator.

    What `make demo` runs; nothing outside loopback is touched.
    """
    with (
        tempfile.TemporaryDirectory(prefix="reconciler-demo-") as tmp,
        run_emulator(
            demo_assets(),
            project_id=DEMO_PROJECT_ID,
            ak="demo-access-key",
            sk="demo-secret-key",
            rate_limits=DEFAULT_RATE_LIMITS,
        ) as emu,
    ):
        work = Path(tmp)
        config = work / "reconciler.yaml"
        config.write_text(
            "default_target: demo\n"
            "state: state.sqlite\n"
            "targets:\n"
            f"  demo: {{endpoint: '{emu.base_url}', project_id: {DEMO_PROJECT_ID}}}\n",
            encoding="utf-8",
        )
        missing = work / "retired-jingle.yaml"
        missing.write_text(MISSING_MANIFEST, encoding="utf-8")
        env = {**os.environ, **emu.env()}
        base = ["--config", str(config)]
        manifests = str(manifest_dir)
        click.echo(f"Emulator listening on {emu.base_url} (project {DEMO_PROJECT_ID}).")

        _banner("1. Validate the manifests (offline)")
        _run(["validate", manifests], env, expect=[0])

        _banner("2. Plan: live state differs from git; one declared asset no longer exists")
        _run([*base, "plan", manifests, str(missing)], env, expect=[1])

        _banner("3. Apply the manifests")
        _run([*base, "apply", "--auto-approve", manifests], env, expect=[0])

        _banner("4. Plan again: nothing left to do")
        _run([*base, "plan", "--detailed-exitcode", manifests], env, expect=[0])

        _banner("5. Someone edits an asset in the console (out of band)")
        emu.store.patch(OUT_OF_BAND_ID, OUT_OF_BAND_EDIT)
        click.echo(f"Changed {OUT_OF_BAND_ID}: {OUT_OF_BAND_EDIT}")

        _banner("6. Scheduled drift report")
        _run([*base, "drift", "--include-unmanaged", manifests], env, expect=[2])
