"""Plan against the service: read live state in bulk and let the engine diff each chunk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from reconciler.constants import READ_PARALLELISM
from reconciler.engine.diff import Desired
from reconciler.engine.plan import Plan
from reconciler.engine.planner import PlanBuilder
from reconciler.engine.state import Record
from reconciler.live.fetch import LiveSource, fetch_live
from reconciler.times import now_rfc3339


class RecordSource(Protocol):
    """The part of ``reconciler.engine.state.WriteOnlyState`` the plan reads."""

    def get_many(self, project_id: str, asset_ids: Sequence[str]) -> Mapping[str, Record]: ...


async def build_plan(
    desired: Sequence[Desired],
    client: LiveSource,
    *,
    state: RecordSource | None,
    target_name: str | None,
    project_id: str,
    endpoint: str | None,
    parallelism: int = READ_PARALLELISM,
) -> Plan:
    """Plan every desired asset against live, in manifest order."""
    records = state.get_many(project_id, [d.asset_id for d in desired]) if state is not None else {}
    builder = PlanBuilder(desired, records=records, project_id=project_id)
    _, failed = await fetch_live(desired, client, parallelism, on_chunk=builder.diff_chunk)
    return builder.plan(
        failed, target_name=target_name, endpoint=endpoint, created_at=now_rfc3339()
    )
