"""Plan against the service: read live state in bulk and let the engine diff each chunk.

:class:`PlanRun` reads while the manifests are still loading: it starts before any manifest is
known, is fed desired assets chunk by chunk, and can be cancelled at once when a manifest turns
out invalid (then no further read is sent).  :func:`build_plan` is the same for desired assets
known up front.  Rows that lack a managed field or block are read whole with ShowAsset once the
bulk reads are done, then diffed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from reconciler.constants import READ_PARALLELISM
from reconciler.engine.diff import Desired
from reconciler.engine.plan import Plan
from reconciler.engine.planner import PlanBuilder
from reconciler.engine.records import Record
from reconciler.live.fetch import LiveReads, LiveSource, ShowSource, show_each
from reconciler.times import now_rfc3339


async def cancel_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a task of reads and wait until it has stopped; an error it already ended with is
    dropped with it (the run that cancels reports something else)."""
    if task is None:
        return
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class RecordSource(Protocol):
    """The part of :class:`reconciler.state.WriteOnlyRecords` the plan reads."""

    def get_many(self, project_id: str, asset_ids: Sequence[str]) -> Mapping[str, Record]: ...


class PlanSource(LiveSource, ShowSource, Protocol):
    """Bulk reads, and ShowAsset for rows that lack what the plan needs."""


class PlanRun:
    """One plan whose live reads start before its manifests are all loaded.

    ``start(expected)`` begins reading (``expected``: how many assets the run may want, for
    choosing between paging and ids); :meth:`add` hands over desired assets in manifest order;
    :meth:`finish` waits for the last read and returns the plan; :meth:`cancel` stops every
    read.
    """

    def __init__(
        self,
        client: PlanSource,
        *,
        state: RecordSource | None,
        project_id: str,
        parallelism: int = READ_PARALLELISM,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.client = client
        self.on_progress = on_progress
        self._done = 0
        self.state = state
        self.project_id = project_id
        self.parallelism = parallelism
        self.builder = PlanBuilder(project_id=project_id)
        self.reads: LiveReads[Desired] = LiveReads(client, parallelism, self._diff_chunk)
        self._task: asyncio.Task[None] | None = None
        self._cancelled = False

    def _diff_chunk(self, chunk: list[Desired], live: dict[str, dict[str, Any]]) -> None:
        self.builder.diff_chunk(chunk, live)
        self._done += len(chunk)
        if self.on_progress is not None:
            self.on_progress(self._done, len(self.builder.desired))

    def start(self, expected: int, *, exact: bool = False) -> None:
        """Begin reading; ``exact``: ``expected`` is exactly how many assets will be added
        (see :meth:`LiveReads.run`)."""
        self._task = asyncio.ensure_future(self.reads.run(expected, exact=exact))

    def add(self, desired: Sequence[Desired]) -> None:
        if not desired:
            return
        records = (
            self.state.get_many(self.project_id, [d.asset_id for d in desired])
            if self.state is not None
            else {}
        )
        self.builder.add(desired, records)
        self.reads.want(desired)

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    async def cancel(self) -> None:
        """Stop every read now (requests in flight are abandoned)."""
        self._cancelled = True
        await cancel_task(self._task)

    async def finish(self, *, target_name: str | None, endpoint: str | None) -> Plan:
        """No more desired assets: read what is left, then lay out the plan."""
        if self._task is None:  # everything was added up front
            self.start(sum(1 for d in self.builder.desired if d.app_user_id is None))
        assert self._task is not None
        self.reads.close()
        await self._task
        failed = self.reads.failures()
        if self.builder.incomplete:  # summary rows: read those assets whole before diffing them
            shown, show_failed = await show_each(
                self.builder.incomplete, self.client, self.parallelism
            )
            failed = {**failed, **show_failed}
            self.builder.diff_shown(shown)
        return self.builder.plan(
            failed, target_name=target_name, endpoint=endpoint, created_at=now_rfc3339()
        )


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
    run = PlanRun(
        client, state=state, project_id=project_id, parallelism=parallelism, on_progress=on_progress
    )
    run.add(desired)
    return await run.finish(target_name=target_name, endpoint=endpoint)
