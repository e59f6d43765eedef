"""The run layer against a real emulator: what each command's run returns and decides.

The CLI tests drive these through subprocesses; here the decisions are pinned directly: the
threshold warning on a plan, a declined confirmation sending nothing, a saved plan refused for
another project, and import reporting the ids the project does not have.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator.testing import RunningEmulator, run_emulator
from reconciler.engine.plan import Action
from reconciler.engine.safety import Crossing, ThresholdCrossed
from reconciler.errors import ConfigError
from reconciler.options import GlobalOptions
from reconciler.run import (
    ApplyHooks,
    ApplyRefused,
    apply_manifests,
    apply_saved,
    import_assets,
    make_plan,
    open_run,
    open_session,
    read_plan,
    write_plan,
)

pytestmark = pytest.mark.e2e


def asset_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def live_asset(i: int) -> dict[str, Any]:
    return {
        "asset_id": asset_id(i),
        "asset_name": f"Image {i}",
        "asset_type": "IMAGE",
        "asset_state": "ACTIVED",
    }


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with run_emulator([live_asset(i) for i in range(20)]) as running:
        yield running


@pytest.fixture
def options(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> GlobalOptions:
    for name in list(os.environ):
        if name.startswith(("HUAWEICLOUD_", "HW_")):
            monkeypatch.delenv(name)
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    return GlobalOptions(endpoint=emu.base_url, project_id=emu.project_id, region="cn-north-4")


def manifests(directory: Path, names: dict[int, str]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    docs = [
        f"apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\nmetadata:\n"
        f"  asset_id: {asset_id(i)}\nspec:\n  asset_name: {name}\n"
        for i, name in names.items()
    ]
    (directory / "assets.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return [str(directory)]


async def test_plan_above_the_threshold_carries_the_crossing(
    options: GlobalOptions, tmp_path: Path
) -> None:
    names = {i: ("Renamed" if i < 7 else f"Image {i}") for i in range(20)}
    plan = await make_plan(options, manifests(tmp_path, names))
    assert len(plan.by_action(Action.UPDATE)) == 7
    (target,) = plan.plans
    assert target.crossing == Crossing(7, 20, 30.0)
    assert plan.warnings == []  # the words are the command line's (render.apply_text)


async def test_each_plan_carries_its_targets_own_threshold(
    options: GlobalOptions, tmp_path: Path
) -> None:
    names = {i: ("Renamed" if i < 2 else f"Image {i}") for i in range(20)}
    plan = await make_plan(options, manifests(tmp_path, names), max_change_percent=5)
    (target,) = plan.plans
    assert target.safety.max_change_percent == 5
    assert target.crossing == Crossing(2, 20, 5.0)


async def test_plan_with_out_saves_a_plan_file_that_reads_back(
    options: GlobalOptions, tmp_path: Path
) -> None:
    out = tmp_path / "saved" / "plan.json"
    plan = await make_plan(options, manifests(tmp_path, {1: "New"}))
    write_plan(out, plan)
    assert read_plan(out).plan == plan


def test_declined_confirmation_sends_nothing(
    emu: RunningEmulator, options: GlobalOptions, tmp_path: Path
) -> None:
    shown = []
    hooks = ApplyHooks(on_plan=shown.append, confirm=lambda _plan: False)
    run = apply_manifests(options, manifests(tmp_path, {2: "Declined"}), hooks=hooks)
    assert run.cancelled and run.result is None and run.exit_code == 1
    assert shown == [run.plan]
    stored = emu.store.get(asset_id(2))
    assert stored is not None and stored["asset_name"] == "Image 2"


def test_apply_above_the_threshold_is_refused_without_force(
    emu: RunningEmulator, options: GlobalOptions, tmp_path: Path
) -> None:
    names = {i: f"Bulk {i}" for i in range(20)}
    with pytest.raises(ApplyRefused) as refused:
        apply_manifests(options, manifests(tmp_path, names))
    assert refused.value.reason == ThresholdCrossed(
        [("default", Crossing(20, 20, 30.0))], several=False, shown=True
    )
    stored = emu.store.get(asset_id(10))
    assert stored is not None and stored["asset_name"] == "Image 10"


def test_saved_plan_for_another_project_is_refused(options: GlobalOptions, tmp_path: Path) -> None:

    out = tmp_path / "plan.json"
    write_plan(out, asyncio.run(make_plan(options, manifests(tmp_path, {3: "Elsewhere"}))))
    other = GlobalOptions(endpoint=options.endpoint, project_id="another-project")
    with pytest.raises(ApplyRefused, match="was made for project"):
        apply_saved(other, out)


def test_apply_reports_each_result_then_returns_them_in_plan_order(
    emu: RunningEmulator, options: GlobalOptions, tmp_path: Path
) -> None:
    seen = []
    hooks = ApplyHooks(on_result=seen.append)
    run = apply_manifests(options, manifests(tmp_path, {4: "Four", 5: "Five"}), hooks=hooks)
    assert run.result is not None and run.exit_code == 0
    assert [r.asset_id for r in run.result.results] == [asset_id(4), asset_id(5)]
    assert sorted(r.asset_id for r in seen) == [asset_id(4), asset_id(5)]
    stored = emu.store.get(asset_id(4))
    assert stored is not None and stored["asset_name"] == "Four"


def test_import_names_the_ids_the_project_lacks(options: GlobalOptions, tmp_path: Path) -> None:
    missing = "ffffffff-0000-4000-8000-000000000000"
    run = import_assets(options, [asset_id(6), missing], tmp_path / "imported")
    assert run.missing == [missing]
    assert len(run.result.created) == 1 and run.result.created[0].exists()


def _targeted(directory: Path, targets: dict[int, str | None]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    docs = [
        f"apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\nmetadata:\n"
        f"  asset_id: {asset_id(i)}\n" + (f"  target: {target}\n" if target else "") + "spec:\n"
        f"  asset_name: N{i}\n"
        for i, target in targets.items()
    ]
    (directory / "assets.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return [str(directory)]


@pytest.fixture
def three_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(("HUAWEICLOUD_", "HW_", "EU_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "plain-ak")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "plain-sk")
    config = tmp_path / "reconciler.yaml"
    config.write_text(
        "default_target: staging\ntargets:\n"
        "  prod: {endpoint: 'http://127.0.0.1:1', project_id: p1}\n"
        "  staging: {endpoint: 'http://127.0.0.1:2', project_id: p2}\n"
        "  eu: {endpoint: 'http://127.0.0.1:3', project_id: p3, credentials_env_prefix: EU_}\n"
    )
    return config


def test_open_run_groups_manifests_by_target_in_the_configurations_order(
    three_targets: Path, tmp_path: Path
) -> None:
    paths = _targeted(tmp_path / "m", {1: "prod", 2: None, 3: "eu", 4: "prod"})
    run = open_run(GlobalOptions(config=three_targets), paths)
    assert [(t.label, len(t.manifests)) for t in run.targets] == [
        ("prod", 2),
        ("staging", 1),
        ("eu", 1),
    ]
    eu = run.targets[2]
    assert eu.session is None and eu.error is not None and "EU_HUAWEICLOUD_SDK_AK" in str(eu.error)
    assert run.targets[0].session is not None
    assert run.targets[0].session.credentials.ak == "plain-ak"

    narrowed = open_run(GlobalOptions(config=three_targets, targets=("eu", "prod")), paths)
    assert [t.label for t in narrowed.targets] == ["eu", "prod"]
    with pytest.raises(ConfigError, match="EU_HUAWEICLOUD_SDK_AK"):
        open_run(GlobalOptions(config=three_targets, targets=("eu",)), paths)


def test_a_manifest_naming_an_undefined_target_is_an_error_naming_it(
    three_targets: Path, tmp_path: Path
) -> None:
    paths = _targeted(tmp_path / "m", {1: "prod", 2: "prdo"})
    with pytest.raises(
        ConfigError, match=r"assets\.yaml:\d+: metadata\.target: no target named 'prdo'"
    ):
        open_run(GlobalOptions(config=three_targets), paths)
    # The streamed run (plan, apply, drift) says the same, once the load is over.
    with pytest.raises(
        ConfigError, match=r"assets\.yaml:\d+: metadata\.target: no target named 'prdo'"
    ):
        asyncio.run(make_plan(GlobalOptions(config=three_targets), paths))


def test_single_target_flags_are_refused_when_a_run_covers_several(
    three_targets: Path, tmp_path: Path
) -> None:
    paths = _targeted(tmp_path / "m", {1: "prod", 2: None})
    with pytest.raises(ConfigError, match="--project-id applies to one target"):
        open_run(GlobalOptions(config=three_targets, project_id="x"), paths)
    with pytest.raises(
        ConfigError, match=r"--project-id applies to one target, .* covers 2 \(prod, staging\)"
    ):
        asyncio.run(make_plan(GlobalOptions(config=three_targets, project_id="x"), paths))


def test_the_clients_of_one_session_share_its_pacing(options: GlobalOptions) -> None:
    """The limits are the tenant's: an apply's fresh reads right after its plan's reads must not
    start with a full burst of their own (that drew 429s from the service)."""
    session = open_session(options)
    first, second = session.client(), session.client(parallelism=2)
    assert first.pacer is second.pacer is session.pacer
