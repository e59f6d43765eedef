"""Policy rules end to end: a refused change stops apply with nothing sent.

Each test runs ``reconciler`` as a real process against the emulator on a loopback socket and
reads the PUTs from the emulator's request log and the result from its store.
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
policies:
  - name: keep-live-avatars-active
    match: {asset_type: [HUMAN_MODEL_2D]}
    deny: "after.asset_state == 'UNACTIVED'"
    message: live avatars stay active
  - name: locked-names
    match: {labels: {locked: "true"}}
    deny: "'asset_name' in changes"
    message: assets labelled locked keep their name
"""


def avatar(i: int) -> dict[str, Any]:
    return {
        "asset_id": aid(i),
        "asset_name": f"Avatar {i}",
        "asset_description": "live",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "tags": ["NEWS"],
    }


def manifest(i: int, spec: str, labels: str = "") -> str:
    return (
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
        f"metadata:\n  asset_id: {aid(i)}\n{labels}spec:\n"
        + textwrap.indent(textwrap.dedent(spec), "  ")
    )


def write(cli: Cli, *docs: str, config: str = CONFIG) -> None:
    (cli.cwd / "reconciler.yaml").write_text(config, encoding="utf-8")
    directory = cli.cwd / "manifests"
    directory.mkdir(exist_ok=True)
    (directory / "assets.yaml").write_text("---\n".join(docs), encoding="utf-8")


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    with run_emulator([avatar(1), avatar(2)]) as emu:
        yield Cli(emu, tmp_path)


def deactivate_and_describe(cli: Cli) -> None:
    write(
        cli,
        manifest(1, "asset_state: UNACTIVED\n"),
        manifest(2, "asset_description: updated\n"),
    )


def test_a_violation_is_shown_in_every_format_and_stops_apply_with_nothing_sent(
    cli: Cli,
) -> None:
    deactivate_and_describe(cli)
    shown = cli.run("plan")
    assert shown.returncode == 0, shown.stderr
    assert "refused by policy keep-live-avatars-active: live avatars stay active" in shown.stdout
    assert "Plan: 2 to change, 0 unchanged, 1 refused by policy." in shown.stdout
    markdown = cli.run("plan", "--format", "markdown").stdout
    assert "refused by policy</b> <code>keep-live-avatars-active</code>" in markdown
    document = json.loads(cli.run("plan", "--format", "json").stdout)
    rows = {a["asset_id"]: a for a in document["targets"][0]["assets"]}
    assert rows[aid(1)]["violations"] == [
        {"rule": "keep-live-avatars-active", "message": "live avatars stay active", "error": None}
    ]
    assert rows[aid(2)]["violations"] == []
    assert document["summary"]["violations"] == 1

    cli.emu.clear_requests()
    refused = cli.run("apply", "--auto-approve")
    assert refused.returncode == 1
    assert "policy rules refuse 1 change; nothing was sent" in refused.stderr
    assert "--allow-policy keep-live-avatars-active" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert cli.puts() == []  # not even the asset no rule refuses
    stored = cli.emu.store.get(aid(1))
    assert stored is not None and stored["asset_state"] == "ACTIVED"


def test_allow_policy_lets_the_change_through_and_the_report_records_it(cli: Cli) -> None:
    deactivate_and_describe(cli)
    cli.emu.clear_requests()
    result = cli.run(
        "apply",
        "--auto-approve",
        "--allow-policy",
        "keep-live-avatars-active",
        "--report",
        "report.json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(cli.puts()) == [
        (aid(1), {"asset_state": "UNACTIVED"}),
        (aid(2), {"asset_description": "updated"}),
    ]
    assert f"Allowed by --allow-policy keep-live-avatars-active: 1 asset ({aid(1)})" in (
        result.stdout
    )
    report = json.loads((cli.cwd / "report.json").read_text(encoding="utf-8"))
    assert report["allowed_policies"] == [
        {"rule": "keep-live-avatars-active", "asset_ids": [aid(1)]}
    ]
    stored = cli.emu.store.get(aid(1))
    assert stored is not None and stored["asset_state"] == "UNACTIVED"


def test_a_saved_plan_with_a_violation_is_refused_and_allowing_another_rule_does_not_help(
    cli: Cli,
) -> None:
    write(cli, manifest(1, "asset_name: Renamed\n", labels='  labels: {locked: "true"}\n'))
    assert cli.run("plan", "--out", "plan.json").returncode == 0
    cli.emu.clear_requests()
    other = cli.run("apply", "plan.json", "--allow-policy", "keep-live-avatars-active")
    assert other.returncode == 1
    assert "locked-names: assets labelled locked keep their name" in other.stderr
    assert cli.puts() == []
    allowed = cli.run("apply", "plan.json", "--allow-policy", "locked-names")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert cli.puts() == [(aid(1), {"asset_name": "Renamed"})]


def test_a_rule_that_cannot_be_evaluated_refuses_the_change(cli: Cli) -> None:
    config = (
        "policies:\n  - name: needs-owner\n    deny: \"after.owner == 'nobody'\"\n"
        "    message: every asset has an owner\n"
    )
    write(cli, manifest(2, "asset_description: updated\n"), config=config)
    cli.emu.clear_requests()
    result = cli.run("apply", "--auto-approve")
    assert result.returncode == 1
    assert "needs-owner: every asset has an owner (could not evaluate" in result.stderr
    assert cli.puts() == []


def test_a_broken_expression_fails_validate_naming_the_file_and_the_rule(cli: Cli) -> None:
    config = (
        'policies:\n  - name: half-written\n    deny: "after.asset_state =="\n'
        "    message: unfinished\n"
    )
    write(cli, manifest(1, "asset_name: Avatar 1\n"), config=config)
    result = cli.run("validate")
    assert result.returncode == 1
    assert "reconciler.yaml: policies[0] (half-written).deny: the condition does not parse" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert cli.emu.requests() == []
    write(cli, manifest(1, "asset_name: Avatar 1\n"))
    valid = cli.run("validate")
    assert valid.returncode == 0, valid.stderr
    assert "reconciler.yaml: 0 ignore rules and 2 policy rules valid." in valid.stdout


def test_self_heal_never_heals_into_a_violation_and_reports_it(cli: Cli) -> None:
    write(
        cli,
        manifest(1, "asset_name: Avatar 1\n", labels='  labels: {locked: "true"}\n'),
        manifest(2, "asset_description: live\n"),
    )
    cli.emu.store.patch(aid(1), {"asset_name": "Renamed by hand"})
    cli.emu.store.patch(aid(2), {"asset_description": "edited by hand"})
    cli.emu.clear_requests()
    done = cli.run("--log-format", "json", "watch", "manifests", "--once", "--self-heal")
    assert "Traceback" not in done.stderr
    assert cli.puts() == [(aid(2), {"asset_description": "live"})]
    events = [json.loads(line) for line in done.stderr.splitlines() if '"heal-policy"' in line]
    assert [e["asset_id"] for e in events] == [aid(1)]
    assert "policy locked-names: assets labelled locked keep their name" in events[0]["message"]
    stored = cli.emu.store.get(aid(1))
    assert stored is not None and stored["asset_name"] == "Renamed by hand"
