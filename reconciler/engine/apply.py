"""Apply a Plan: one PUT per changed asset, bounded concurrency, verified, interruptible.

The core is :func:`apply_plan`, a function over a :class:`~reconciler.engine.plan.Plan`, a client
and the write-only state store that returns an :class:`ApplyResult`; the CLI only prints it.
Only the exact ``AssetPlan.body`` of rows whose action is UPDATE is ever sent: nothing is
recomputed here, so what the user approved is what reaches the service.

After each PUT the response (the updated asset) is compared with the body that was sent; a field
the service did not take is reported as *not converged* and counts as a failure, because a
silently ignored field would otherwise show up as the same change on every future plan.

Saved plans are checked for staleness with :func:`find_stale`: one bulk fetch of the plan's
assets, comparing each live fingerprint with the one recorded when the plan was made.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from reconciler.api.models import WRITE_ONLY_FIELDS
from reconciler.engine.plan import Action, AssetPlan, Plan
from reconciler.errors import ReconcilerError

log = logging.getLogger(__name__)

DEFAULT_PARALLELISM = 10


class UpdatedAsset(Protocol):
    """What the client returns for a PUT: the asset as the service now has it."""

    @property
    def raw(self) -> dict[str, Any]: ...

    @property
    def request_id(self) -> str | None: ...


class ApplyClient(Protocol):
    """The part of ``reconciler.api.client.MetaStudioClient`` that apply uses."""

    async def update(
        self, asset_id: str, body: Mapping[str, Any], app_user_id: str | None = None
    ) -> Any: ...

    async def fetch(
        self, asset_ids: Sequence[str], app_user_ids: Mapping[str, str | None] | None = None
    ) -> Mapping[str, Any]: ...


class WriteOnlyRecorder(Protocol):
    """The part of ``reconciler.engine.state.WriteOnlyState`` that apply uses."""

    def record(self, project_id: str, asset_id: str, fingerprint: str) -> Any: ...


class Outcome(enum.StrEnum):
    UPDATED = "updated"  # PUT accepted and the response shows every planned field
    FAILED = "failed"  # the PUT was rejected or never got an answer
    NOT_CONVERGED = "not converged"  # PUT accepted, but the service did not take some fields
    NOT_APPLIED = "not applied"  # an error or blocked row of the plan: nothing was sent
    NOT_STARTED = "not started"  # interrupted before its turn came


@dataclass(frozen=True)
class AssetResult:
    """The outcome for one asset of the plan."""

    asset_id: str
    name: str | None
    outcome: Outcome
    status: int | None = None  # HTTP status of a failed PUT
    error_code: str | None = None
    error_msg: str | None = None
    request_id: str | None = None
    mismatches: tuple[str, ...] = ()  # for NOT_CONVERGED: one line per field
    reason: str | None = None  # for NOT_APPLIED: the plan's error text

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.UPDATED

    def line(self) -> str:
        """One stdout line, e.g. ``93769b5a-...: updated (Sara Model)``."""
        name = f" ({self.name})" if self.name else ""
        if self.outcome is Outcome.UPDATED:
            return f"{self.asset_id}: updated{name}"
        if self.outcome is Outcome.FAILED:
            parts = [str(self.status) if self.status is not None else None]
            parts += [self.error_code, self.error_msg]
            detail = " ".join(p for p in parts if p) or "unknown error"
            rid = f" (request id {self.request_id})" if self.request_id else ""
            return f"{self.asset_id}: FAILED {detail}{rid}{name}"
        if self.outcome is Outcome.NOT_CONVERGED:
            rid = f" (request id {self.request_id})" if self.request_id else ""
            fields = "; ".join(self.mismatches)
            return f"{self.asset_id}: NOT CONVERGED{name}: the service did not take {fields}{rid}"
        if self.outcome is Outcome.NOT_APPLIED:
            return f"{self.asset_id}: not applied{name}: {self.reason or 'plan error'}"
        return f"{self.asset_id}: not started{name}"


@dataclass
class ApplyResult:
    """Every asset's outcome, in plan order, and whether the run was interrupted."""

    results: list[AssetResult] = field(default_factory=list)
    interrupted: bool = False

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def changed(self) -> int:
        return self.count(Outcome.UPDATED)

    @property
    def failed(self) -> int:
        return self.count(Outcome.FAILED) + self.count(Outcome.NOT_CONVERGED)

    @property
    def not_applied(self) -> int:
        return self.count(Outcome.NOT_APPLIED)

    @property
    def not_started(self) -> int:
        return self.count(Outcome.NOT_STARTED)

    @property
    def exit_code(self) -> int:
        """0 all applied, 130 interrupted, 1 any failure or plan error."""
        if self.interrupted:
            return 130
        return 1 if self.failed or self.not_applied else 0

    def summary(self) -> str:
        """The closing line, in Terraform's words."""
        counts = f"{self.changed} changed, {self.failed} failed"
        extra = ""
        if self.not_applied:
            extra += f", {self.not_applied} not applied (see the plan)"
        if self.not_started:
            extra += f", {self.not_started} not started"
        if self.interrupted:
            return f"Apply interrupted: {counts}{extra}."
        if self.exit_code == 0:
            return f"Apply complete! {counts}{extra}."
        return f"Apply failed: {counts}{extra}."


ResultCallback = Callable[[AssetResult], None]


async def apply_plan(
    plan: Plan,
    client: ApplyClient,
    *,
    state: WriteOnlyRecorder | None = None,
    parallelism: int = DEFAULT_PARALLELISM,
    cancel: asyncio.Event | None = None,
    on_result: ResultCallback | None = None,
) -> ApplyResult:
    """Send each UPDATE row's body once, at most ``parallelism`` at a time.

    Failures are per asset: the rest go on. When ``cancel`` is set nothing new starts, the
    requests in flight finish, and the remaining rows are reported as not started. ``on_result``
    is called as each asset finishes (for live output).
    """
    if parallelism < 1:
        raise ReconcilerError("--parallelism must be at least 1")
    cancel = cancel or asyncio.Event()
    report = on_result or (lambda _result: None)
    results: dict[str, AssetResult] = {}

    for row in plan.assets:
        if row.action in (Action.ERROR, Action.BLOCKED):
            results[row.asset_id] = _not_applied(row)
            report(results[row.asset_id])

    todo = [row for row in plan.assets if row.action is Action.UPDATE and row.body is not None]
    queue: asyncio.Queue[AssetPlan] = asyncio.Queue()
    for row in todo:
        queue.put_nowait(row)

    async def worker() -> None:
        while not cancel.is_set():
            try:
                row = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            result = await _apply_one(row, client, state, plan.project_id)
            results[row.asset_id] = result
            report(result)

    workers = [asyncio.create_task(worker()) for _ in range(min(parallelism, len(todo)))]
    if workers:
        await asyncio.gather(*workers)

    ordered: list[AssetResult] = []
    for row in plan.assets:
        if row.asset_id in results:
            ordered.append(results[row.asset_id])
        elif row.action is Action.UPDATE:
            ordered.append(AssetResult(row.asset_id, row.name, Outcome.NOT_STARTED))
    return ApplyResult(ordered, interrupted=cancel.is_set())


def _not_applied(row: AssetPlan) -> AssetResult:
    reason = "; ".join(row.errors) or (
        f"asset state {row.live_state} cannot be updated"
        if row.action is Action.BLOCKED
        else "could not be planned"
    )
    if row.action is Action.BLOCKED and not reason.startswith("blocked"):
        reason = f"blocked: {reason}"
    return AssetResult(
        row.asset_id, row.name, Outcome.NOT_APPLIED, error_code=row.error_code, reason=reason
    )


async def _apply_one(
    row: AssetPlan, client: ApplyClient, state: WriteOnlyRecorder | None, project_id: str | None
) -> AssetResult:
    body = row.body or {}
    try:
        updated = await client.update(row.asset_id, body, app_user_id=row.app_user_id)
    except ReconcilerError as exc:
        return AssetResult(
            row.asset_id,
            row.name,
            Outcome.FAILED,
            status=getattr(exc, "status", None),
            error_code=getattr(exc, "error_code", None),
            error_msg=getattr(exc, "error_msg", None) or str(exc),
            request_id=getattr(exc, "request_id", None),
        )
    request_id: str | None = getattr(updated, "request_id", None)
    # The service accepted the write-only values: remember them even if another field did not
    # converge, so the next plan does not re-send them needlessly.
    if state is not None and row.write_only_fingerprint and project_id:
        try:
            state.record(project_id, row.asset_id, row.write_only_fingerprint)
        except ReconcilerError as exc:  # the PUT did happen: report, don't lose the result
            log.warning("asset %s updated, but its write-only record failed: %s", row.asset_id, exc)
    raw: dict[str, Any] = getattr(updated, "raw", None) or {}
    mismatches = verify(body, raw)
    if mismatches:
        log.warning("asset %s did not converge: %s", row.asset_id, "; ".join(mismatches))
        return AssetResult(
            row.asset_id,
            row.name,
            Outcome.NOT_CONVERGED,
            request_id=request_id,
            mismatches=tuple(mismatches),
        )
    return AssetResult(row.asset_id, row.name, Outcome.UPDATED, request_id=request_id)


# --- verification ------------------------------------------------------------------------------


def verify(body: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Fields of ``body`` that the updated asset ``live`` does not show, one line each.

    Write-only fields cannot be read back and are skipped. ``system_properties`` is checked as
    the ADD/DELETE operations it carries. Nested objects are compared on the keys the body sent
    (the response also carries read-only fields). Lists of scalars compare as sets (every such
    list in the API is set-like), lists of objects in order; 1 equals 1.0, RFC 3339 times compare
    as instants, and an absent value equals an empty one.
    """
    out: list[str] = []
    for key, sent in body.items():
        if key in WRITE_ONLY_FIELDS:
            continue
        if key == "system_properties":
            out.extend(_verify_system_properties(sent, live.get(key)))
            continue
        _compare(key, sent, live.get(key), out)
    return out


def _verify_system_properties(ops: Any, live: Any) -> list[str]:
    have: dict[str, Any] = {}
    for item in live or ():
        if isinstance(item, Mapping) and item.get("action", "ADD") != "DELETE":
            have[str(item.get("key"))] = item.get("value")
    added = {str(op.get("key")) for op in ops or () if op.get("action") == "ADD"}
    out: list[str] = []
    for op in ops or ():
        key, value = str(op.get("key")), op.get("value")
        if op.get("action") == "ADD" and have.get(key) != value:
            out.append(
                f"system_properties.{key} = {_show(value)} (service has {_show(have.get(key))})"
            )
        elif op.get("action") == "DELETE" and key in have and key not in added:
            out.append(f"system_properties.{key} removal (service still has {_show(have[key])})")
    return out


def _compare(path: str, sent: Any, live: Any, out: list[str]) -> None:
    if _empty(sent) and _empty(live):
        return
    if isinstance(sent, Mapping):
        if not isinstance(live, Mapping):
            out.append(f"{path} (service has {_show(live)})")
            return
        for key, value in sent.items():
            _compare(f"{path}.{key}", value, live.get(key), out)
        return
    if isinstance(sent, list):
        if not isinstance(live, list):
            out.append(f"{path} = {_show(sent)} (service has {_show(live)})")
        elif all(_is_scalar(v) for v in sent) and all(_is_scalar(v) for v in live):
            if {_key(v) for v in sent} != {_key(v) for v in live}:
                out.append(f"{path} = {_show(sent)} (service has {_show(live)})")
        elif len(sent) != len(live):
            out.append(f"{path} = {_show(sent)} (service has {_show(live)})")
        else:
            for i, (s, v) in enumerate(zip(sent, live, strict=True)):
                _compare(f"{path}[{i}]", s, v, out)
        return
    if not _scalar_equal(sent, live):
        out.append(f"{path} = {_show(sent)} (service has {_show(live)})")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _key(value: Any) -> Any:
    """A set key where 1 and 1.0 meet but True and 1 do not."""
    return (type(value) is bool, value)


def _scalar_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if a == b:
        return True
    if isinstance(a, str) and isinstance(b, str):
        ta, tb = _instant(a), _instant(b)
        return ta is not None and ta == tb
    return False


def _instant(text: str) -> datetime | None:
    if len(text) < 19 or text[4:5] != "-" or "T" not in text.upper():
        return None
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# --- staleness of a saved plan --------------------------------------------------------------


@dataclass(frozen=True)
class StaleAsset:
    """An asset whose live state changed since the plan was made."""

    asset_id: str
    name: str | None
    reason: str

    def line(self) -> str:
        name = f" ({self.name})" if self.name else ""
        return f"{self.asset_id}{name}: {self.reason}"


def checked_rows(plan: Plan) -> list[AssetPlan]:
    """Rows whose plan depended on live state: those a saved plan is checked against.

    Error rows are not applied, so a change to them cannot make the plan wrong.
    """
    return [a for a in plan.assets if a.action in (Action.UPDATE, Action.NOOP, Action.BLOCKED)]


async def find_stale(
    plan: Plan,
    client: ApplyClient,
    fingerprint: Callable[[Mapping[str, Any]], str],
) -> list[StaleAsset]:
    """Re-read the plan's assets in one bulk fetch; those whose fingerprint moved are stale."""
    rows = checked_rows(plan)
    if not rows:
        return []
    try:
        live = await client.fetch(
            [r.asset_id for r in rows], {r.asset_id: r.app_user_id for r in rows}
        )
    except BaseExceptionGroup as group:  # concurrent page reads fail as a group
        raise _first_error(group) from None
    stale: list[StaleAsset] = []
    for row in rows:
        current = live.get(row.asset_id)
        if current is None:
            stale.append(StaleAsset(row.asset_id, row.name, "no longer exists"))
            continue
        raw: Mapping[str, Any] = getattr(current, "raw", current)
        if row.live_fingerprint is None or fingerprint(raw) != row.live_fingerprint:
            stale.append(StaleAsset(row.asset_id, row.name, "changed since the plan was made"))
    return stale


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first project error inside a (nested) exception group, else the group itself."""
    for inner in group.exceptions:
        if isinstance(inner, ReconcilerError):
            return inner
        if isinstance(inner, BaseExceptionGroup):
            found = _first_error(inner)
            if found is not inner:
                return found
    return group


def stale_message(stale: Iterable[StaleAsset]) -> str:
    """The refusal for a stale plan: every stale asset and what to do."""
    items = list(stale)
    lines = [
        f"the saved plan is stale: {len(items)} asset(s) changed since it was made; "
        "nothing was sent.",
        *(f"  {item.line()}" for item in items),
        "Run `reconciler plan --out PLANFILE` again and apply the new plan.",
    ]
    return "\n".join(lines)
