"""The plan as a JSON document: ``PlanSet.to_json()`` (a list of targets) with its
``format_version``.

Key order is fixed by ``PlanSet.to_json`` (the order docs/plan.md lists), so two plans of the same
state are byte-identical apart from ``created_at``; scripts should still read keys, not offsets.
"""

from __future__ import annotations

from collections.abc import Iterator

from reconciler import jsonstream
from reconciler.engine.plan import Plan, PlanSet


def chunks(plan: Plan | PlanSet) -> Iterator[str]:
    """The plan as indented UTF-8 JSON text ending in a newline, in pieces: each asset's entry
    is made when it is written, so a plan of 100,000 assets is never one document in memory.
    ``format_version`` is always the document's first key."""
    return jsonstream.indented(PlanSet.of(plan).to_json(stream=True), end="\n")


def render(plan: Plan | PlanSet) -> str:
    """The plan as indented UTF-8 JSON text, ending in a newline."""
    return "".join(chunks(plan))
