"""Ignore rules end to end: what someone else owns survives every apply.

Each test runs ``reconciler`` as a real process against the emulator on a loopback socket.
Between runs "another system" edits the emulator's store directly (the console reorders, a
campaign system adds and removes ``campaign-*`` tags); the PUT bodies in the emulator's request
log and the stored asset show that the tool never touched what the rules leave alone, and that
each PUT body is exactly the plan's.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator.samples import asset_id as aid
from reconciler.emulator.testing import run_emulator
from tests.e2e.cli_runner import Cli

pytestmark = pytest.mark.e2e

CONFIG = """\
ignore:
  - name: console-owns-order
    paths: [spec.asset_order]
    match: {asset_type: [HUMAN_MODEL_2D]}
  - name: campaign-tags
    paths: ["spec.tags[campaign-*]"]
"""


def avatar(i: int) -> dict[str, Any]:
    return {
        "asset_id": aid(i),
        "asset_name": f"Avatar {i}",
        "asset_description": "live",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "asset_order": 3,
        "tags": ["NEWS", "campaign-spring"],
        "asset_extra_meta": {
            "human_model_2d_meta": {
                "support_live": False,
                "model_resolution": "1080P",
                "model_version": "V3",
            }
        },
    }


def manifest(i: int, spec: str, metadata: str = "") -> str:
    return (
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
        f"metadata:\n  asset_id: {aid(i)}\n{textwrap.indent(metadata, '  ')}spec:\n"
        + textwrap.indent(textwrap.dedent(spec), "  ")
    )


def write(cli: Cli, *docs: str, config: str = CONFIG) -> None:
    (cli.cwd / "reconciler.yaml").write_text(config, encoding="utf-8")
    directory = cli.cwd / "manifests"
    directory.mkdir(exist_ok=True)
    (directory / "assets.yaml").write_text("---\n".join(docs), encoding="utf-8")


def stored(cli: Cli, i: int) -> dict[str, Any]:
    asset = cli.emu.store.get(aid(i))
    assert asset is not None
    return asset


def planned_bodies(cli: Cli) -> dict[str, Any]:
    result = cli.run("plan", "--format", "json")
    assert result.returncode in (0, 2), result.stderr
    document = json.loads(result.stdout)
    return {a["asset_id"]: a["body"] for t in document["targets"] for a in t["assets"] if a["body"]}


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    with run_emulator([avatar(1), avatar(2)]) as emu:
        yield Cli(emu, tmp_path)


def test_ignored_fields_and_tag_patterns_survive_applies_while_others_change_them(
    cli: Cli,
) -> None:
    write(
        cli,
        manifest(1, "asset_name: Avatar One\nasset_order: 9\ntags: [NEWS, FEMALE, campaign-x]\n"),
    )
    shown = cli.run("plan")
    assert shown.returncode == 0, shown.stderr
    assert "ignored by rule console-owns-order: asset_order" in shown.stdout
    assert 'sent whole: ["NEWS", "FEMALE", "campaign-spring"]' in shown.stdout
    assert "Ignored: 2 fields (campaign-tags 1, console-owns-order 1)." in shown.stdout
    expected = {"asset_name": "Avatar One", "tags": ["NEWS", "FEMALE", "campaign-spring"]}
    assert planned_bodies(cli) == {aid(1): expected}

    cli.emu.clear_requests()
    applied = cli.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert cli.puts() == [(aid(1), expected)]  # exactly the plan's body
    assert stored(cli, 1)["asset_order"] == 3

    # Another system reorders the asset and runs its campaigns between the runs.
    cli.emu.store.patch(
        aid(1), {"asset_order": 7, "tags": ["NEWS", "FEMALE", "campaign-summer", "campaign-fall"]}
    )
    cli.emu.clear_requests()
    again = cli.run("apply", "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout
    assert cli.puts() == []
    drift = cli.run("drift")
    assert drift.returncode == 0, drift.stdout + drift.stderr

    # The manifest drops FEMALE: the merged list keeps today's campaign tags.
    write(cli, manifest(1, "asset_name: Avatar One\nasset_order: 9\ntags: [NEWS]\n"))
    expected = {"tags": ["NEWS", "campaign-summer", "campaign-fall"]}
    assert planned_bodies(cli) == {aid(1): expected}
    cli.emu.clear_requests()
    last = cli.run("apply", "--auto-approve")
    assert last.returncode == 0, last.stdout + last.stderr
    assert cli.puts() == [(aid(1), expected)]
    after = stored(cli, 1)
    assert after["tags"] == ["NEWS", "campaign-summer", "campaign-fall"]
    assert after["asset_order"] == 7


def test_a_manifests_own_ignore_keeps_the_live_value_inside_a_block_it_sends(cli: Cli) -> None:
    nested = "asset_extra_meta.human_model_2d_meta.model_resolution"
    write(
        cli,
        manifest(
            2,
            "asset_extra_meta:\n  human_model_2d_meta:\n"
            "    support_live: true\n    model_resolution: 1080P\n",
            metadata=f"ignore: [spec.{nested}]\n",
        ),
        config="",
    )
    cli.emu.store.patch(aid(2), {nested: "4K"})  # the console changed it
    plan = json.loads(cli.run("plan", "--format", "json").stdout)
    row = plan["targets"][0]["assets"][0]
    assert row["ignored"] == [{"path": nested, "rule": "metadata.ignore"}]
    cli.emu.clear_requests()
    applied = cli.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert cli.puts() == [(aid(2), row["body"])]
    block = row["body"]["asset_extra_meta"]["human_model_2d_meta"]
    assert (block["support_live"], block["model_resolution"]) == (True, "4K")
    meta = stored(cli, 2)["asset_extra_meta"]["human_model_2d_meta"]
    assert meta["model_resolution"] == "4K"


def test_an_unknown_field_path_stops_the_run_with_a_hint_and_reads_nothing(cli: Cli) -> None:
    write(
        cli,
        manifest(1, "asset_name: Avatar One\n"),
        config="ignore:\n  - name: typo\n    paths: [spec.asset_ordr]\n",
    )
    result = cli.run("plan")
    assert result.returncode == 1
    assert "did you mean 'spec.asset_order'?" in result.stderr
    assert "ignore[0].paths[0]" in result.stderr
    assert "Traceback" not in result.stderr
    assert cli.emu.requests() == []
    checked = cli.run("validate")
    assert checked.returncode == 1 and "did you mean 'spec.asset_order'?" in checked.stderr
