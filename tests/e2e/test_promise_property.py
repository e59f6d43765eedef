"""The promise, as a property over real sockets: apply makes live say what the manifest says,
touches nothing else, and a second plan is empty.

For a generated manifest and a generated live asset (keys this tool does not know, ``key: null``
at any depth, system properties in any order, set-like lists, write-only fields, ordered lists of
objects with distinct identities), the asset is seeded into the emulator, planned and applied
with the project's own client, then read back through the API:

* every value the manifest manages reads back as declared (as the service compares values:
  1 == 1.0, instants in any offset, set-like lists in any order); ``KEY: null`` under
  ``system_properties`` reads back absent; write-only fields are what the service stored;
* every other live value, unknown keys and ``key: null`` (unmanaged) fields included, reads back
  as it was;
* planning again changes nothing.

``make test`` runs a bounded number of examples; ``make property`` (``PROMISE_PROFILE=nightly``)
runs many more.  The strategies are the in-process convergence test's
(tests/engine/test_convergence.py), extended with the cases above.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st

from reconciler.api.client import RetryPolicy
from reconciler.emulator.testing import RunningEmulator, run_emulator
from reconciler.engine import policy
from reconciler.engine.apply import ApplyResult
from reconciler.engine.diff import Desired
from reconciler.engine.plan import Action, Plan
from reconciler.live.apply import apply_plan
from reconciler.live.plan import build_plan
from reconciler.render.apply_text import result_line
from reconciler.state import WriteOnlyRecords
from reconciler.state.sqlite import SqliteStore
from tests.engine.test_convergence import (
    BLOCKS,
    INSTANTS,
    leaves,
    live_with_unknown_keys,
    same_to_the_service,
)

pytestmark = pytest.mark.e2e

# In `make test`: a bounded search, reported unshrunk (shrinking an example that goes over
# sockets can take minutes); `make property` searches longer and shrinks what it finds.
settings.register_profile(
    "promise-ci",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.register_profile(
    "promise-nightly", settings.get_profile("promise-ci"), max_examples=600, phases=list(Phase)
)
PROFILE = settings.get_profile(f"promise-{os.environ.get('PROMISE_PROFILE', 'ci')}")

FAST_RETRY = RetryPolicy(max_retries=3, backoff_base=0.01, backoff_cap=0.05)
SP = policy.SYSTEM_PROPERTIES
XM = "asset_extra_meta"
IDENTITY = "action_name_en"
Leaf = tuple[Any, ...]  # field names, and list indexes (ints)


# --- generated cases ------------------------------------------------------------------------


def _distinct_items(block: dict[str, Any]) -> None:
    """Ordered lists of objects keep one item per identity (the manifest schema refuses
    duplicates), with a non-empty identity."""
    items = block.get("action_tag_map")
    if not isinstance(items, list):
        return
    seen: dict[str, dict[str, Any]] = {}
    for item in items:
        item[IDENTITY] = item.get(IDENTITY) or "a"
        seen.setdefault(item[IDENTITY], item)
    block["action_tag_map"] = list(seen.values())


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    spec, live = draw(live_with_unknown_keys())
    block_name = BLOCKS[live["asset_type"]][0]
    for side in (spec, live):
        block = side.get(XM, {}).get(block_name)
        if isinstance(block, dict):
            _distinct_items(block)
    if live.get(SP):
        live[SP] = draw(st.permutations(live[SP]))
        if draw(st.booleans()):
            # Declare live keys (and one new) in any order: deletes, adds and equal values mixed.
            names = draw(st.permutations([p["key"] for p in live[SP]] + ["BACKGROUND_SCENE"]))
            values = st.sampled_from(["Yes", "No", None])
            spec[SP] = {name: draw(values) for name in dict.fromkeys(names)}
    # "key: null" leaves a field unmanaged, at the top level and inside a block.
    for key in draw(st.sets(st.sampled_from(["asset_description", "tags", "asset_order"]))):
        spec[key] = None
    declared_block = spec.get(XM, {}).get(block_name)
    live_block = live.get(XM, {}).get(block_name) or {}
    if isinstance(declared_block, dict) and live_block:
        for key in draw(st.sets(st.sampled_from(sorted(live_block)), max_size=2)):
            declared_block[key] = None
    if draw(st.booleans()):
        spec["shared_config"] = {"shared_type": "PRIVATE", "expire_time": draw(INSTANTS)}
    return spec, live


# --- what the manifest manages -----------------------------------------------------------------


def _get(value: Any, path: Leaf) -> Any:
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def conforms(path: Leaf, got: Any, want: Any) -> bool:
    """``got`` holds every value ``want`` declares: maps key by key (``null`` = unmanaged),
    ordered lists of objects item by item, anything else as the service compares it."""
    if isinstance(want, dict):
        return all(
            conforms((*path, key), _get(got, (key,)), value)
            for key, value in want.items()
            if value is not None
        )
    if isinstance(want, list) and any(isinstance(item, dict) for item in want):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(
                conforms((*path, i), g, w) for i, (g, w) in enumerate(zip(got, want, strict=True))
            )
        )
    return same_to_the_service(path, got, want)


def managed(spec: dict[str, Any]) -> list[Leaf]:
    """Paths whose live value the manifest decides (their subtrees included)."""
    out: list[Leaf] = []

    def walk(path: Leaf, value: Any) -> None:
        if path == (SP,):
            out.extend((SP, key) for key in value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if item is not None:
                    walk((*path, key), item)
        else:
            out.append(path)

    for key, value in spec.items():
        if value is not None and key not in policy.WRITE_ONLY:
            walk((key,), value)
    return out


def properties(asset: dict[str, Any]) -> dict[str, Any]:
    return {p["key"]: p.get("value") for p in asset.get(SP) or ()}


# --- running it ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with run_emulator([], record=False) as running:
        yield running


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WriteOnlyRecords]:
    with SqliteStore(Path(tmp_path_factory.mktemp("promise")) / "state.sqlite") as store:
        yield store.records


NUMBERS = itertools.count()


async def _plan(emu: RunningEmulator, desired: Desired, state: WriteOnlyRecords) -> Plan:
    async with emu.client(retry=FAST_RETRY) as client:
        return await build_plan(
            [desired],
            client,
            state=state,
            target_name="emu",
            project_id=emu.project_id,
            endpoint=emu.base_url,
        )


def _read(emu: RunningEmulator, asset_id: str) -> dict[str, Any]:
    answer = emu.request("GET", emu.assets_path(asset_id))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


HUMAN = {"asset_id": "a-1", "asset_type": "HUMAN_MODEL_2D", "asset_state": "ACTIVED"}


def _props(**values: str) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in values.items()]


@settings(PROFILE)
@given(cases())
# Shapes a bounded search can miss, always tried first: a nested null beside a managed key, and
# declared system properties that follow a null (absent, then present in live) key.
@example(
    case=(
        {XM: {"human_model_2d_meta": {"model_version": None, "support_live": True}}},
        {**HUMAN, XM: {"human_model_2d_meta": {"model_version": "V3", "support_live": False}}},
    )
)
@example(
    case=(
        {SP: {"MATERIAL_IMG": None, "BACKGROUND_IMG": "Yes", "CREATED_BY_PLATFORM": "No"}},
        {**HUMAN, SP: _props(CREATED_BY_PLATFORM="Yes", IS_CONTROLLED="YES")},
    )
)
@example(
    case=(
        {SP: {"IS_CONTROLLED": None, "BACKGROUND_IMG": "Yes"}},
        {**HUMAN, SP: _props(IS_CONTROLLED="YES", MATERIAL_IMG="No")},
    )
)
def test_apply_reads_back_as_declared_leaves_the_rest_and_converges(
    emu: RunningEmulator, state: WriteOnlyRecords, case: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    spec, live = case
    asset_id = f"promise-{next(NUMBERS)}"
    emu.store.seed([{**live, "asset_id": asset_id}], emu.project_id)
    desired = Desired(asset_id, spec, source="promise.yaml:1:1")
    before = _read(emu, asset_id)

    plan = asyncio.run(_plan(emu, desired, state))
    row = plan.assets[0]
    assert row.action in (Action.UPDATE, Action.NOOP), row.errors
    event(f"plan: {row.action.value}")

    async def apply() -> ApplyResult:
        async with emu.client(retry=FAST_RETRY) as client:
            return await apply_plan(plan, client, state=state)

    result = asyncio.run(apply())
    assert result.exit_code == 0, [result_line(r) for r in result.results]
    after = _read(emu, asset_id)

    # Managed values read back as declared.
    for key, want in spec.items():
        if want is None or key in policy.WRITE_ONLY:
            continue
        if key == SP:
            have = properties(after)
            for name, value in want.items():
                if value is None:
                    assert name not in have, (name, row.body)
                else:
                    assert same_to_the_service((SP, name), have.get(name), value), (name, row.body)
        else:
            assert conforms((key,), after.get(key), want), (key, after.get(key), row.body)
    stored = emu.store.get_write_only(asset_id)
    for key in policy.WRITE_ONLY & set(spec):
        assert conforms((key,), stored.get(key), spec[key]), (key, stored.get(key))

    # Everything else reads back as it was.
    decided = managed(spec)
    old, new = leaves(before), leaves(after)
    for path in sorted(set(old) | set(new)):
        if path == ("update_time",) or any(path[: len(m)] == m for m in decided):
            continue
        assert same_to_the_service(path, new.get(path), old.get(path)), (path, row.body)

    # And a second plan has nothing left to do.
    again = asyncio.run(_plan(emu, desired, state)).assets[0]
    assert again.action is Action.NOOP, (again.changes, row.body)
    assert again.changes == [] and again.body is None
