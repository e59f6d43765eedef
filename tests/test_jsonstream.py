"""Documents written piece by piece are exactly the documents ``json.dumps`` writes whole."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from plan_samples import in_sync_plan, sample_plan

from reconciler import jsonstream
from reconciler.engine.plan import Plan, PlanSet

INDENTED: dict[str, Any] = {"indent": 2, "ensure_ascii": False, "allow_nan": False}
CANONICAL: dict[str, Any] = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False}


def plans() -> PlanSet:
    empty = Plan([], target="empty", project_id="p0", endpoint="https://e", created_at="t")
    return PlanSet([sample_plan(), in_sync_plan(), empty], created_at="2026-12-01T00:00:00Z")


def test_a_plan_document_in_pieces_is_the_whole_document() -> None:
    whole = plans().to_json()
    streamed = plans().to_json(stream=True)
    assert "".join(jsonstream.indented(streamed)) == json.dumps(whole, **INDENTED)
    assert "".join(jsonstream.canonical(streamed)) == json.dumps(whole, **CANONICAL)


leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    head=st.dictionaries(st.text(max_size=5), values, max_size=3),
    items=st.lists(values, max_size=4),
    nested=st.booleans(),
)
def test_any_document_with_a_streamed_list_is_encoded_as_json_dumps_would(
    head: dict[str, Any], items: list[Any], nested: bool
) -> None:
    def place(value: Any) -> dict[str, Any]:
        inner = {**head, "list": value}
        return {"outer": [inner, {"x": 1}]} if nested else inner

    streamed = place(jsonstream.Streamed(items, lambda item: item))
    whole = place(items)
    assert "".join(jsonstream.indented(streamed)) == json.dumps(whole, **INDENTED)
    assert "".join(jsonstream.canonical(streamed)) == json.dumps(whole, **CANONICAL)
