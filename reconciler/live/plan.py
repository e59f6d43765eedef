"""Plan against the service: read live state in bulk and let the engine diff each chunk."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from reconciler.constants import READ_PARALLELISM
from reconciler.engine.diff import Desired
from reconciler.engine.plan import Plan
from reconciler.engine.planner import PlanBuilder
from reconciler.engine.state import Record
from reconciler.live.fetch import LiveSource, ShowSource, fetch_live, show_each
from reconciler.times import now_rfc3339


class RecordSource(Protocol):
    """The part of ``reconciler.engine.state.WriteOnlyState`` the plan reads."""

    def get_many(self, project_id: str, asset_ids: Sequence[str]) -> Mapping[str, Record]: ...


class PlanSource(LiveSource, ShowSource, Protocol):
    """Bulk reads, and ShowAsset for rows that lack what the plan needs."""


async def build_plan(
    desired: Sequence[Desired],
    client: PlanSource,
    *,
    state: RecordSource | None,
    target_name: str | None,
    project_id: str,
    endpoint: str | None,
    parallelism: int = READ_PARALLELISM,
    on_progress: Callable[[int, int], None] | None = None,
) -> Plan:
    """Plan every desired asset against live, in manifest order.

    ``on_progress(done, total)`` is called as each chunk of live assets has been read and diffed.
    """
    records = state.get_many(project_id, [d.asset_id for d in desired]) if state is not None else {}
    builder = PlanBuilder(desired, records=records, project_id=project_id)
    done = 0

    def diff_chunk(chunk: list[Desired], live: dict[str, dict[str, Any]]) -> None:
        nonlocal done
        builder.diff_chunk(chunk, live)
        done += len(chunk)
        if on_progress is not None:
            on_progress(done, len(desired))

    _, failed = await fetch_live(desired, client, parallelism, on_chunk=diff_chunk)
    if builder.incomplete:  # summary rows: read those assets whole before diffing them
        shown, show_failed = await show_each(builder.incomplete, client, parallelism)
        failed = {**failed, **show_failed}
        builder.diff_shown(shown)
    return builder.plan(
        failed, target_name=target_name, endpoint=endpoint, created_at=now_rfc3339()
    )
