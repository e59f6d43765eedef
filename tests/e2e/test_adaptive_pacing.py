"""Apply against a service whose real update quota is half the configured rate (issue 22, 9).

``reconciler apply`` runs as a real process against the emulator over a loopback socket. The
target is configured for the published 10 updates per second (``--region cn-north-4``) while the
emulator allows 5: the run must slow down to what the service applies instead of bursting into
it again after every pause, so that every change lands, no PUT is throttled twice, and the
closing warning names the limit the service stated and the time really lost.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator.samples import asset_id as aid
from reconciler.emulator.testing import run_emulator
from tests.e2e.cli_runner import Cli

pytestmark = pytest.mark.e2e

CHANGES = 24


def voice(i: int) -> dict[str, Any]:
    return {
        "asset_id": aid(i),
        "asset_name": f"Voice {i}",
        "asset_type": "VOICE_MODEL",
        "asset_state": "ACTIVED",
        "tags": ["NEWS"],
    }


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    assets = [voice(i) for i in range(1, CHANGES + 1)]
    with run_emulator(assets, rate_limits={"update": 5}, latency_ms=5) as emu:
        directory = tmp_path / "manifests"
        directory.mkdir()
        docs = [
            "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
            f"metadata:\n  asset_id: {aid(i)}\nspec:\n  asset_name: Voice {i} renamed\n"
            for i in range(1, CHANGES + 1)
        ]
        (directory / "voices.yaml").write_text("---\n".join(docs), encoding="utf-8")
        yield Cli(emu, tmp_path)


def test_an_apply_over_the_real_quota_slows_to_it_and_lands_every_change(cli: Cli) -> None:
    result = cli.run("--region", "cn-north-4", "apply", "--auto-approve", "--force")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Apply complete! {CHANGES} changed" in result.stdout
    puts = [
        (e["path"].rsplit("/", 1)[1], e["status"])
        for e in cli.emu.requests()
        if e["method"] == "PUT"
    ]
    landed = {asset for asset, status in puts if status == 200}
    assert landed == {aid(i) for i in range(1, CHANGES + 1)}
    throttled = Counter(asset for asset, status in puts if status == 429)
    # The first burst over the quota meets a 429 or two; after that the pace is the service's:
    # no PUT is throttled twice, and the run does not hit the limit again and again.
    assert all(times == 1 for times in throttled.values()), throttled
    assert 1 <= sum(throttled.values()) <= 3, puts
    for i in range(1, CHANGES + 1):
        stored = cli.emu.store.get(aid(i))
        assert stored is not None and stored["asset_name"] == f"Voice {i} renamed"
    warning = re.search(
        r"Warning: throttled (\d+) times? by MetaStudio \(HTTP 429, update limit 5/s\); "
        r"about (\d+\.\d) s lost; requests now go at the limit the service applies",
        result.stderr,
    )
    assert warning, result.stderr
    assert int(warning.group(1)) == sum(throttled.values())
    # Retry-After is one second here: the pauses, however many requests waited in them
    assert 0.9 <= float(warning.group(2)) <= 1.2 * sum(throttled.values())
