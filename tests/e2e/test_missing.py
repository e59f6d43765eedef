"""An asset is missing only when the service says so: ``drift``, ``watch --once``,
``drift --include-unmanaged`` and ``import --all`` as real processes against the emulator over
loopback, while assets are deleted during paging and the list's ``count`` is off.

The project has 260 assets (three pages of 100); manifests manage the first 250.  Deleting
asset 5 when the page at offset 100 is asked for (page 0, which held it, was already read) moves
asset 100 onto page 0: no page holds it.  It exists, and its real drift must be reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cli_process import clean_env

from reconciler.api.client import MetaStudioClient
from reconciler.api.errors import ServiceError
from reconciler.emulator.testing import RunningEmulator, run_emulator
from reconciler.options import GlobalOptions
from reconciler.run import import_assets
from reconciler.state.sqlite import SqliteStore

pytestmark = pytest.mark.e2e

PROJECT_SIZE = 260
MANAGED = 250


def asset_id(n: int) -> str:
    return f"{n:08d}-0000-4000-8000-000000000000"


DELETED, SHIFTED = asset_id(5), asset_id(100)


def live_assets() -> list[dict[str, Any]]:
    return [
        {
            "asset_id": asset_id(n),
            "asset_name": f"Clip {n}",
            "asset_description": f"Clip number {n}",
            "asset_type": "VIDEO",
            "asset_state": "ACTIVED",
            "tags": ["NEWS"],
        }
        for n in range(PROJECT_SIZE)
    ]


def write_manifests(root: Path, overrides: Mapping[str, dict[str, Any]]) -> None:
    """One manifest per managed asset, in sync with live but for ``overrides`` (by id)."""
    folder = root / "manifests"
    folder.mkdir()
    for asset in live_assets()[:MANAGED]:
        spec = {
            "asset_name": asset["asset_name"],
            "asset_description": asset["asset_description"],
            "tags": asset["tags"],
            **overrides.get(asset["asset_id"], {}),
        }
        document = {
            "apiVersion": "reconciler.metastudio/v1",
            "kind": "DigitalAsset",
            "metadata": {"asset_id": asset["asset_id"]},
            "spec": spec,
        }
        (folder / f"{asset['asset_id'][:8]}.yaml").write_text(json.dumps(document, indent=2))


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with run_emulator(live_assets()) as running:
        yield running


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_manifests(tmp_path, {SHIFTED: {"asset_description": "Declared in git"}})
    return tmp_path


def run(emu: RunningEmulator, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=root,
        env=clean_env({**emu.env(), "NO_COLOR": "1"}),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def drift_json(emu: RunningEmulator, root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = run(emu, root, "drift", "manifests", "--format", "json", *args)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["asset_id"]: a for p in report["projects"] for a in p["assets"]}


def shows(emu: RunningEmulator) -> list[tuple[str, int]]:
    """The ShowAsset requests: (asset id, status)."""
    return [
        (e["path"].rsplit("/", 1)[1], e["status"])
        for e in emu.requests()
        if e["method"] == "GET" and e["path"] != emu.assets_path()
    ]


def test_an_asset_shifted_off_every_page_is_not_missing_and_its_drift_is_reported(
    emu: RunningEmulator, root: Path
) -> None:
    emu.mutate_on_list(100, delete=DELETED)
    code, report = drift_json(emu, root, "--include-unmanaged")
    assert code == 2
    assets = by_id(report)
    shifted = assets[SHIFTED]
    assert shifted["status"] == "drifted"
    assert shifted["fields"] == [
        {"path": "asset_description", "manifest": "Declared in git", "live": "Clip number 100"}
    ]
    assert assets[DELETED]["status"] == "in-sync"  # page 0 held it before it was deleted
    reads = [e for e in emu.requests() if e["method"] == "GET"]
    by_ids = [[v for k, v in e["query"] if k == "asset_id"] for e in reads]
    assert [ids for ids in by_ids if ids] == [[SHIFTED]]  # the one asset no page held, by id
    assert shows(emu) == []  # the list by id found it: nothing to confirm
    summary = report["summary"]
    assert (summary["drifted"], summary["missing"], summary["in-sync"]) == (1, 0, 249)
    # Coverage counts what was really seen: every managed asset and the 10 unmanaged ones.
    assert (summary["managed"], summary["total"], summary["unmanaged"]) == (250, 260, 10)
    listed = {u["asset_id"] for u in report["projects"][0]["unmanaged"]}
    assert listed == {asset_id(n) for n in range(MANAGED, PROJECT_SIZE)}


def test_the_text_report_names_the_shifted_asset_drifted_and_nothing_missing(
    emu: RunningEmulator, root: Path
) -> None:
    emu.mutate_on_list(100, delete=DELETED)
    done = run(emu, root, "drift", "manifests")
    assert done.returncode == 2, done.stderr
    assert f'# asset "Clip 100" ({SHIFTED}) has drifted from its manifest' in done.stdout
    assert "is missing" not in done.stdout and "MSS." not in done.stdout
    assert "Drift: 1 drifted, 0 missing, 0 blocked, 249 in sync, 0 errors." in done.stdout


@pytest.mark.parametrize("count_offset", [-200, -60, 60])
def test_a_count_that_is_off_makes_nothing_missing_and_loses_no_row(
    emu: RunningEmulator, root: Path, count_offset: int
) -> None:
    emu.set_count_offset(count_offset)
    code, report = drift_json(emu, root, "--include-unmanaged")
    assert code == 2  # the one real drift
    summary = report["summary"]
    assert (summary["drifted"], summary["missing"], summary["in-sync"]) == (1, 0, 249)
    assert (summary["managed"], summary["total"], summary["unmanaged"]) == (250, 260, 10)
    assert by_id(report)[SHIFTED]["status"] == "drifted"
    assert shows(emu) == []  # every asset was on a page: nothing read one by one


def test_a_really_deleted_asset_is_missing_with_the_services_not_found_code(
    emu: RunningEmulator, root: Path
) -> None:
    emu.store.delete(DELETED)
    code, report = drift_json(emu, root)
    assert code == 2
    gone = by_id(report)[DELETED]
    assert gone["status"] == "missing"
    assert "ShowAsset answered 400 MSS.10001001 Asset not found" in gone["errors"][0]
    assert report["summary"]["missing"] == 1 and report["summary"]["drifted"] == 1


def test_watch_once_records_the_real_drift_not_a_missing_asset(
    emu: RunningEmulator, root: Path
) -> None:
    emu.mutate_on_list(100, delete=DELETED)
    done = run(emu, root, "--log-format", "json", "watch", "manifests", "--once")
    assert done.returncode == 2, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    (cycle,) = [e for e in events if e.get("event") == "cycle"]
    assert (cycle["result"], cycle["drifted"], cycle["missing"]) == ("success", 1, 0)
    assert cycle["managed"] == 250
    with SqliteStore(root / ".reconciler" / "state.sqlite") as store:
        episodes = store.history.open_episodes(emu.project_id)
    assert set(episodes) == {SHIFTED}
    assert (episodes[SHIFTED].status, episodes[SHIFTED].fields) == (
        "drifted",
        ("asset_description",),
    )
    # The next cycle: asset 5 is gone now, and the service says so.
    again = run(emu, root, "--log-format", "json", "watch", "manifests", "--once")
    events = [json.loads(line) for line in again.stderr.splitlines() if line.startswith("{")]
    (cycle,) = [e for e in events if e.get("event") == "cycle"]
    assert (cycle["drifted"], cycle["missing"], cycle["managed"]) == (1, 1, 249)
    with SqliteStore(root / ".reconciler" / "state.sqlite") as store:
        assert store.history.open_episodes(emu.project_id)[DELETED].status == "missing"


def test_import_all_refreshes_a_manifest_whose_asset_shifted_off_every_page(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    first = run(emu, tmp_path, "import", "--all", "--dir", "imported")
    assert first.returncode == 0, first.stderr
    assert f"Import: {PROJECT_SIZE} created" in first.stdout
    emu.store.patch(SHIFTED, {"asset_description": "Edited in the console"})
    emu.mutate_on_list(100, delete=DELETED)
    check = run(emu, tmp_path, "import", "--all", "--dir", "imported", "--check")
    assert check.returncode == 2, check.stdout + check.stderr
    assert (
        f'~ asset_description: "Clip number 100" -> "Edited in the console" (asset {SHIFTED})'
        in check.stdout
    )
    assert "Import check: 0 to create, 1 to update, 259 already in sync" in check.stdout


def test_import_all_with_a_low_count_still_imports_every_asset(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    emu.set_count_offset(-250)
    done = run(emu, tmp_path, "import", "--all", "--dir", "imported")
    assert done.returncode == 0, done.stderr
    assert f"Import: {PROJECT_SIZE} created" in done.stdout
    assert len(list((tmp_path / "imported").glob("*.yaml"))) == PROJECT_SIZE


def test_import_all_refuses_a_known_asset_it_could_not_read(
    emu: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: the pages are read, and the read by id of the asset no page held fails."""
    first = run(emu, tmp_path, "import", "--all", "--dir", "imported")
    assert first.returncode == 0, first.stderr
    emu.mutate_on_list(100, delete=DELETED)

    async def failing_fetch(*_args: Any, **_kwargs: Any) -> Any:
        raise ServiceError(method="GET", path="/v1/p/digital-assets", status=503)

    monkeypatch.setattr(MetaStudioClient, "fetch", failing_fetch)
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    options = GlobalOptions(endpoint=emu.base_url, project_id=emu.project_id)
    done = import_assets(options, [], tmp_path / "imported", check=True)
    assert done.result.refused == [
        f"asset {SHIFTED!r}: reading it failed (GET /v1/p/digital-assets failed: 503); "
        "its manifest was not refreshed"
    ]
    assert not done.result.updated and len(done.result.unchanged) == PROJECT_SIZE - 1
