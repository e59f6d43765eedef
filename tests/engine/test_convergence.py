"""Convergence: apply the planned PUT body with the emulator's semantics, plan again: no changes.

The body goes through the emulator's own parsing (strict request model, as on the wire) and its
update function (fields replace, asset_extra_meta blocks replace, system property operations),
so a body the service would reject, or one that leaves a difference behind, fails here.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.emulator.app import stored_after
from reconciler.engine import normalize
from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.plan import Action
from reconciler.engine.records import Record

AID = "a-1"
TAGS = st.lists(st.sampled_from(["NEWS", "FEMALE", "SPORTS", "x"]), max_size=4)
TEXT = st.text(alphabet="ab ", max_size=3)
SERVICES = st.lists(st.sampled_from(["VIDEO_2D", "LIVE_2D", "CHAT_2D"]), max_size=3, unique=True)
PROPS = st.dictionaries(
    st.sampled_from(["BACKGROUND_IMG", "MATERIAL_IMG", "CREATED_BY_PLATFORM"]),
    st.sampled_from(["Yes", "No"]),
)
INSTANTS = st.sampled_from(
    ["2025-01-10T00:00:00Z", "2025-01-10T08:00:00+08:00", "2025-01-11T00:00:00Z"]
)
AUTO_OPS = st.lists(
    st.fixed_dictionaries(
        {"operation": st.sampled_from(["BLOCK", "DELETE"]), "operation_time": INSTANTS}
    ),
    max_size=2,
)
RATIO = st.one_of(st.integers(0, 3), st.sampled_from([1.0, 1.5, 2.0]))

HUMAN_BLOCK = st.fixed_dictionaries(
    {},
    optional={
        "support_live": st.booleans(),
        "is_flexus": st.booleans(),
        "model_resolution": st.sampled_from(["1080P", "4K"]),
        "model_version": st.sampled_from(["V2", "V3"]),
        "device_names": st.lists(st.sampled_from(["d1", "d2", "d3"]), max_size=3),
        "action_tag_map": st.lists(
            st.fixed_dictionaries(
                {"action_name_zh": st.sampled_from(["挥手", "点头"]), "action_name_en": TEXT}
            ),
            max_size=2,
            # action_name_en is the items' identity: a manifest repeating it does not validate
            unique_by=lambda item: item["action_name_en"],
        ),
    },
)
VOICE_BLOCK = st.fixed_dictionaries(
    {},
    optional={
        "speed_ratio": RATIO,
        "volume_ratio": RATIO,
        "sex": st.sampled_from(["MALE", "FEMALE", "UNKNOW"]),
        "languages": st.lists(st.sampled_from(["CN", "EN", "Thai"]), max_size=3),
        "is_realtime_voice": st.booleans(),
        "external_voice_meta": st.fixed_dictionaries(
            {"provider": st.sampled_from(["MOBVOI", "HUAWEI_EI"])}
        ),
    },
)
BLOCKS = {
    "HUMAN_MODEL_2D": ("human_model_2d_meta", HUMAN_BLOCK),
    "VOICE_MODEL": (
        "voice_model_meta",
        VOICE_BLOCK,
    ),
}


def common_fields() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "asset_name": TEXT,
            "asset_description": TEXT,
            "asset_state": st.sampled_from(["ACTIVED", "UNACTIVED"]),
            "tags": TAGS,
            "asset_order": st.integers(0, 5),
            "supported_service": SERVICES,
            "auto_operation_config": AUTO_OPS,
        },
    )


@st.composite
def pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    asset_type = draw(st.sampled_from(sorted(BLOCKS)))
    block_name, block = BLOCKS[asset_type]
    live = {"asset_id": AID, "asset_type": asset_type, "asset_state": "ACTIVED", "asset_name": ""}
    live.update(draw(common_fields()))
    if draw(st.booleans()):
        live_block = draw(block)
        if block_name == "voice_model_meta" and draw(st.booleans()):
            live_block["voice_capability"] = {"is_support_srt": True}  # read-only, kept by service
        live["asset_extra_meta"] = {block_name: live_block}
    if draw(st.booleans()):
        live["system_properties"] = [{"key": k, "value": v} for k, v in draw(PROPS).items()]
    spec = draw(common_fields())
    if draw(st.booleans()):
        spec["asset_extra_meta"] = {block_name: draw(block)}
    if draw(st.booleans()):
        spec["system_properties"] = draw(PROPS)
    if draw(st.booleans()):
        spec["review_config"] = {"no_need_review": draw(st.booleans())}
    return spec, live


def put(live: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """What the emulator stores after receiving ``body`` over the wire."""
    return stored_after(live, body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs())
def test_applying_the_body_converges(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    spec, live = pair
    desired = Desired(AID, spec)
    first = diff_asset(desired, live)
    assert first.action in (Action.UPDATE, Action.NOOP)
    assert (first.body is None) == (first.action is Action.NOOP)
    if first.body is None:
        return
    after = put(live, first.body)
    record = None
    if first.write_only_fingerprint:
        record = Record(first.write_only_fingerprint, "2025-01-01T00:00:00Z")
    second = diff_asset(desired, after, write_only_record=record)
    assert second.action is Action.NOOP, (second.changes, first.body)
    assert second.changes == []
    assert second.body is None
    assert second.unchanged >= first.unchanged


@settings(max_examples=150, deadline=None)
@given(pairs())
def test_body_only_carries_changed_top_level_fields(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    spec, live = pair
    plan = diff_asset(Desired(AID, spec), live)
    if plan.body is None:
        return
    assert set(plan.body) <= set(spec)
    assert set(plan.body) == {str(c.path[0]) for c in plan.changes}
    extra = plan.body.get("asset_extra_meta", {})
    assert set(extra) <= set(spec.get("asset_extra_meta", {}))
    for block in extra.values():
        assert "voice_capability" not in block


# --- apply never changes a live value the plan did not list ------------------------------------

UNKNOWN_VALUE = st.one_of(
    st.integers(-3, 3),
    st.sampled_from(["UE", "x", ""]),
    st.booleans(),
    st.fixed_dictionaries(
        {"mode": st.sampled_from(["fast", "slow"])}, optional={"n": st.integers()}
    ),
    st.lists(st.integers(0, 2), max_size=2),
)
UNKNOWN_KEYS = st.dictionaries(
    st.sampled_from(["render_engine", "lip_sync", "future_flag", "zz_new"]), UNKNOWN_VALUE
)
DECLARED_PROPS = st.dictionaries(
    st.sampled_from(["BACKGROUND_IMG", "MATERIAL_IMG", "CREATED_BY_PLATFORM", "IS_CONTROLLED"]),
    st.sampled_from(["Yes", "No", None]),
)


@st.composite
def live_with_unknown_keys(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A manifest and a live asset whose top level, block and list items carry keys this tool's
    schema does not know (a newer service), and platform-set system properties."""
    spec, live = draw(pairs())
    block_name = BLOCKS[live["asset_type"]][0]
    live.update(draw(st.dictionaries(st.sampled_from(["future_top", "zz_top"]), UNKNOWN_VALUE)))
    extra = live.get("asset_extra_meta", {}).get(block_name)
    if extra is not None:
        extra.update(draw(UNKNOWN_KEYS))
        for item in extra.get("action_tag_map", ()):
            item.update(draw(UNKNOWN_KEYS))
    if draw(st.booleans()):
        live.setdefault("system_properties", []).append({"key": "IS_CONTROLLED", "value": "YES"})
    if draw(st.booleans()):
        spec["system_properties"] = draw(DECLARED_PROPS)
    return spec, live


def leaves(value: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every live value by path: maps are walked, a list is one value, system properties one
    value per key."""
    if path == ("system_properties",):
        return {(*path, p["key"]): p["value"] for p in value or ()}
    if isinstance(value, dict):
        out: dict[tuple[str, ...], Any] = {}
        for key, item in value.items():
            out.update(leaves(item, (*path, key)))
        return out
    return {path: value}


def listed(plan: Any) -> set[tuple[str, ...]]:
    """The paths the plan says change: a nested change lists its changed leaves, not itself."""
    out: set[tuple[str, ...]] = set()

    def walk(change: Any) -> None:
        if change.children:
            for child in change.children:
                walk(child)
        else:
            out.add(tuple(str(p) for p in change.path))

    for change in plan.changes:
        walk(change)
    return out


def same_to_the_service(path: tuple[str, ...], a: Any, b: Any) -> bool:
    """Equal, where an absent value equals the one the API treats alike (``false``, ``[]``)."""

    def form(value: Any) -> Any:
        return normalize.canon(path, normalize.absent_value(path) if value is None else value)

    return bool(form(a) == form(b))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(live_with_unknown_keys())
def test_apply_changes_no_live_value_the_plan_did_not_list(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    spec, live = pair
    plan = diff_asset(Desired(AID, spec), live)
    if plan.body is None:
        return
    before = leaves(live)
    after = leaves(put(live, plan.body))
    changes = listed(plan)
    for path in sorted(set(before) | set(after)):
        if path == ("update_time",) or any(path[: len(c)] == c for c in changes):
            continue
        assert same_to_the_service(path, after.get(path), before.get(path)), (path, plan.body)
