"""What applying a plan means, as data and pure checks: outcomes, verification, staleness.

The requests themselves are sent by :mod:`reconciler.live.apply`; this module holds what it
returns (:class:`ApplyResult`, one :class:`AssetResult` per asset, in plan order) and the
decisions that need no I/O: which rows are not applied, whether an updated asset shows every
field that was sent (:func:`verify`), and which assets of a saved plan moved since it was made
(:func:`stale_assets`, :func:`stale_records`), and whether a fresh read right before a write
still shows the state the plan was made from (:func:`changed_since_plan`).  Wording for users
lives in :mod:`reconciler.render.apply_text`.

After each PUT the response (the updated asset) is compared with the body that was sent; a field
the service did not take is reported as *not converged* and counts as a failure, because a
silently ignored field would otherwise show up as the same change on every future plan.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.api.fields import WRITE_ONLY_FIELDS
from reconciler.engine.fingerprint import live_fingerprint
from reconciler.engine.freshness import changed_fields, lacking
from reconciler.engine.normalize import parse_instant
from reconciler.engine.plan import Action, AssetPlan, ChangeKind, Plan


class Outcome(enum.StrEnum):
    UPDATED = "updated"  # PUT accepted and the response shows every planned field
    ANSWER_LOST = "applied (answer lost)"  # no answer came, but reading back shows the change
    UNKNOWN = "outcome unknown"  # no answer came, and reading back could not tell
    FAILED = "failed"  # the PUT was refused (or could not be sent); it did not land
    NOT_CONVERGED = "not converged"  # PUT accepted, but the service did not take some fields
    NOT_APPLIED = "not applied"  # an error or blocked row of the plan: nothing was sent
    NOT_STARTED = "not started"  # interrupted before its turn came
    NOT_SENT = "not sent"  # stopped (or out of time) while waiting to try again: nothing landed
    CHANGED = "changed since plan"  # the fresh read before the write differs: nothing was sent


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
    mismatches: tuple[Mismatch, ...] = ()  # for NOT_CONVERGED: each field not taken
    reason: str | None = None  # for NOT_APPLIED: the plan's error text
    blocked: bool = False  # for NOT_APPLIED: a blocked row rather than an error row
    live_state: str | None = None  # for a blocked row: the asset state that blocks it
    target: str | None = None  # the asset's target, when the run covers several
    changed: tuple[str, ...] = ()  # for CHANGED: the fields that changed (empty: not known)
    gone: bool = False  # for CHANGED: the asset no longer exists
    wrong_asset: str | None = None  # for FAILED: the answer was for this other asset id
    stage: str | None = None  # for FAILED: "read" before the PUT, "read-back" after it
    attempts: int = 0  # PUT attempts put on the wire for this asset
    lost: str | None = None  # ANSWER_LOST / UNKNOWN: how the answer was lost ("timeout")
    # NOT_SENT: the wait that was cut short (seconds), and whether the run's deadline (rather
    # than Ctrl-C or SIGTERM) cut it
    waiting: float | None = None
    deadline: bool = False
    halted: str | None = None  # NOT_SENT: why the run stopped writing (its write lock was lost)

    @property
    def ok(self) -> bool:
        return self.outcome in LANDED


LANDED = frozenset({Outcome.UPDATED, Outcome.ANSWER_LOST})


@dataclass
class ReadCounts:
    """The reads apply makes besides its writes (design.md 3.11), for logs and the benchmark."""

    fresh_lists: int = 0  # list requests reading assets right before their writes
    fresh_assets: int = 0  # assets read that way
    fresh_shows: int = 0  # ShowAsset reads before writes (planned from ShowAsset, or a summary)
    read_backs: int = 0  # ShowAsset reads verifying a PUT whose answer did not show the values
    retry_reads: int = 0  # reads before a retry, and reads resolving an answer that was lost

    @property
    def requests(self) -> int:
        return self.fresh_lists + self.fresh_shows + self.read_backs + self.retry_reads

    @classmethod
    def total(cls, counts: Iterable[ReadCounts]) -> ReadCounts:
        """The sum over several targets' applies."""
        out = cls()
        for item in counts:
            out.fresh_lists += item.fresh_lists
            out.fresh_assets += item.fresh_assets
            out.fresh_shows += item.fresh_shows
            out.read_backs += item.read_backs
            out.retry_reads += item.retry_reads
        return out


@dataclass
class ApplyResult:
    """Every asset's outcome, in plan order, and whether the run was interrupted."""

    results: list[AssetResult] = field(default_factory=list)
    interrupted: bool = False
    # Set by the run layer when ``interrupted``: what stopped the apply ("SIGTERM", ...) and
    # the exit code that stands for it (130 Ctrl-C, 143 SIGTERM, 1 the run's deadline).
    interrupted_by: str | None = None
    interrupt_exit_code: int = 130
    reads: ReadCounts = field(default_factory=ReadCounts)
    # Why the apply stopped writing before its end (its write lock was lost), else None.
    halted: str | None = None

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def changed(self) -> int:
        """Changes that landed, whether or not their answer came."""
        return self.count(Outcome.UPDATED) + self.count(Outcome.ANSWER_LOST)

    @property
    def answers_lost(self) -> int:
        return self.count(Outcome.ANSWER_LOST)

    @property
    def unknown(self) -> int:
        return self.count(Outcome.UNKNOWN)

    @property
    def not_sent(self) -> int:
        return self.count(Outcome.NOT_SENT)

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
    def changed_since_plan(self) -> int:
        return self.count(Outcome.CHANGED)

    @property
    def exit_code(self) -> int:
        """0 all applied, 130 interrupted (143 by SIGTERM), 1 any failure, unknown outcome,
        change not sent, plan error or change since plan."""
        if self.interrupted:
            return self.interrupt_exit_code
        if self.halted:
            return 1
        problems = (
            self.failed,
            self.unknown,
            self.not_sent,
            self.not_applied,
            self.changed_since_plan,
        )
        return 1 if any(problems) else 0


def to_send(plan: Plan) -> list[AssetPlan]:
    """The rows whose exact ``body`` apply sends: UPDATE rows, nothing recomputed."""
    return [row for row in plan.assets if row.action is Action.UPDATE and row.body is not None]


def not_applied(row: AssetPlan) -> AssetResult:
    """The result of an error or blocked row: nothing is sent for it."""
    return AssetResult(
        row.asset_id,
        row.name,
        Outcome.NOT_APPLIED,
        error_code=row.error_code,
        reason="; ".join(row.errors) or None,
        blocked=row.action is Action.BLOCKED,
        live_state=row.live_state,
    )


def in_plan_order(
    plan: Plan,
    results: Mapping[str, AssetResult],
    interrupted: bool,
    reads: ReadCounts | None = None,
) -> ApplyResult:
    """Results in plan order; UPDATE rows that never ran are reported as not started."""
    ordered: list[AssetResult] = []
    for row in plan.assets:
        if row.asset_id in results:
            ordered.append(results[row.asset_id])
        elif row.action is Action.UPDATE:
            ordered.append(AssetResult(row.asset_id, row.name, Outcome.NOT_STARTED))
    return ApplyResult(ordered, interrupted=interrupted, reads=reads or ReadCounts())


# --- the fresh read before each write (design.md 3.11) -----------------------------------------


def needs_whole_read(row: AssetPlan, fresh: Mapping[str, Any]) -> bool:
    """Whether a fresh (list) read lacks fields the planned read had: a summary row, to be
    completed with ShowAsset before it is compared."""
    return row.live is not None and bool(lacking(row.live, fresh))


def changed_since_plan(row: AssetPlan, fresh: Mapping[str, Any] | None) -> AssetResult | None:
    """None when ``fresh`` is the live state the row was planned from (volatile fields aside);
    else the result that says nothing was sent and why.

    With the planned asset in memory the changed fields are named; a saved plan only has its
    fingerprint, which tells *that* it changed.  A row without either cannot be checked, so it
    is not sent either.
    """
    if fresh is None:
        return AssetResult(row.asset_id, row.name, Outcome.CHANGED, gone=True)
    if row.live is not None:
        changed = changed_fields(row.live, fresh)
        if changed:
            return AssetResult(row.asset_id, row.name, Outcome.CHANGED, changed=tuple(changed))
        return None
    if row.live_fingerprint is None or live_fingerprint(fresh) != row.live_fingerprint:
        return AssetResult(row.asset_id, row.name, Outcome.CHANGED)
    return None


class Landed(enum.Enum):
    """What reading an asset back says about a PUT whose answer was lost."""

    YES = "landed"  # the asset shows every value the body sent
    NO = "not landed"  # the asset is still the state the plan was made from
    UNKNOWN = "unknown"  # neither (someone else changed it too), or it cannot be told


def landed(row: AssetPlan, body: Mapping[str, Any], back: Mapping[str, Any] | None) -> Landed:
    """Whether a PUT of ``body`` whose answer was lost landed, from the asset read back.

    A body of write-only fields alone cannot be read back, so its fate cannot be told; a gone
    asset neither."""
    if back is None or all(key in WRITE_ONLY_FIELDS for key in body):
        return Landed.UNKNOWN
    if not verify(body, back):
        return Landed.YES
    if changed_since_plan(row, back) is None:
        return Landed.NO
    return Landed.UNKNOWN


def answered_for(row: AssetPlan, answer: Mapping[str, Any]) -> str | None:
    """The other asset id a PUT answer is about, if it names one that is not the row's."""
    other = answer.get("asset_id")
    return str(other) if other is not None and other != row.asset_id else None


# --- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """A sent field the updated asset does not show: what was sent, what the service has."""

    path: str
    sent: Any = None
    live: Any = None
    removal: bool = False  # a system property the body deleted is still there
    whole: bool = False  # an object was sent, the service has something else


def verify(body: Mapping[str, Any], live: Mapping[str, Any]) -> list[Mismatch]:
    """Fields of ``body`` that the updated asset ``live`` does not show.

    Write-only fields cannot be read back and are skipped. ``system_properties`` is checked as
    the ADD/DELETE operations it carries. Nested objects are compared on the keys the body sent
    (the response also carries read-only fields). Lists of scalars compare as sets (every such
    list in the API is set-like), lists of objects in order; 1 equals 1.0, RFC 3339 times compare
    as instants, and an absent value equals an empty one.
    """
    out: list[Mismatch] = []
    for key, sent in body.items():
        if key in WRITE_ONLY_FIELDS:
            continue
        if key == "system_properties":
            out.extend(_verify_system_properties(sent, live.get(key)))
            continue
        _compare(key, sent, live.get(key), out)
    return out


def _verify_system_properties(ops: Any, live: Any) -> list[Mismatch]:
    have: dict[str, Any] = {}
    for item in live or ():
        if isinstance(item, Mapping) and item.get("action", "ADD") != "DELETE":
            have[str(item.get("key"))] = item.get("value")
    added = {str(op.get("key")) for op in ops or () if op.get("action") == "ADD"}
    out: list[Mismatch] = []
    for op in ops or ():
        key, value = str(op.get("key")), op.get("value")
        path = f"system_properties.{key}"
        if op.get("action") == "ADD" and have.get(key) != value:
            out.append(Mismatch(path, value, have.get(key)))
        elif op.get("action") == "DELETE" and key in have and key not in added:
            out.append(Mismatch(path, None, have[key], removal=True))
    return out


def _compare(path: str, sent: Any, live: Any, out: list[Mismatch]) -> None:
    if _empty(sent) and _empty(live):
        return
    if isinstance(sent, Mapping):
        if not isinstance(live, Mapping):
            out.append(Mismatch(path, sent, live, whole=True))
            return
        for key, value in sent.items():
            _compare(f"{path}.{key}", value, live.get(key), out)
        return
    if isinstance(sent, list):
        if not isinstance(live, list):
            out.append(Mismatch(path, sent, live))
        elif all(_is_scalar(v) for v in sent) and all(_is_scalar(v) for v in live):
            if {_key(v) for v in sent} != {_key(v) for v in live}:
                out.append(Mismatch(path, sent, live))
        elif len(sent) != len(live):
            out.append(Mismatch(path, sent, live))
        else:
            for i, (s, v) in enumerate(zip(sent, live, strict=True)):
                _compare(f"{path}[{i}]", s, v, out)
        return
    if not _scalar_equal(sent, live):
        out.append(Mismatch(path, sent, live))


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
        ta, tb = parse_instant(a), parse_instant(b)
        return ta is not None and ta == tb
    return False


# --- staleness of a saved plan --------------------------------------------------------------


@dataclass(frozen=True)
class StaleAsset:
    """An asset whose live state changed since the plan was made (or that is gone), or whose
    write-only values were applied again since (``write_only``)."""

    asset_id: str
    name: str | None
    gone: bool = False
    write_only: bool = False
    # The change is the plan's own: the live asset now shows every value the plan would send
    # (and the write-only record is the one this plan leaves), as after applying it.
    applied: bool = False


@dataclass(frozen=True)
class PlanStale:
    """A saved plan's assets that changed since it was made, per target (``several``: the plan
    covers more than one target)."""

    stale: list[tuple[str | None, list[StaleAsset]]]
    several: bool

    @property
    def already_applied(self) -> bool:
        """Every change since the plan was made is the plan's own: it was applied already, so
        applying it again has nothing to do (rather than being refused as stale)."""
        items = [item for _target, found in self.stale for item in found]
        return bool(items) and all(item.applied for item in items)


def checked_rows(plan: Plan) -> list[AssetPlan]:
    """Rows whose plan depended on live state: those a saved plan is checked against.

    Error rows are not applied, so a change to them cannot make the plan wrong.
    """
    return [a for a in plan.assets if a.action in (Action.UPDATE, Action.NOOP, Action.BLOCKED)]


def stale_assets(
    rows: list[AssetPlan],
    live: Mapping[str, Mapping[str, Any]],
    fingerprint: Callable[[Mapping[str, Any]], str],
) -> list[StaleAsset]:
    """The checked rows whose live asset is gone or whose fingerprint moved."""
    stale: list[StaleAsset] = []
    for row in rows:
        current = live.get(row.asset_id)
        if current is None:
            stale.append(StaleAsset(row.asset_id, row.name, gone=True))
        elif row.live_fingerprint is None or fingerprint(current) != row.live_fingerprint:
            stale.append(StaleAsset(row.asset_id, row.name, applied=shows_plan(row, current)))
    return stale


def shows_plan(row: AssetPlan, live: Mapping[str, Any]) -> bool:
    """Whether ``live`` shows every readable value ``row`` would send: the row's update landed.
    A row with nothing readable to send (no update, or write-only fields alone) cannot tell."""
    body = row.body if row.action is Action.UPDATE else None
    if not body or all(key in WRITE_ONLY_FIELDS for key in body):
        return False
    return not verify(body, live)


def stale_records(plan: Plan, records: Mapping[str, str | None]) -> list[StaleAsset]:
    """Rows managing write-only fields whose state record changed since the plan was made.

    ``records`` maps asset ids to the current record (``diff.record_text``).  Write-only values
    cannot be read back, so this record is the only sign that another apply sent newer ones;
    replaying the older plan would send the old values back.
    """
    stale: list[StaleAsset] = []
    for row in checked_rows(plan):
        manages = bool(row.write_only) or any(c.kind is ChangeKind.WRITE_ONLY for c in row.changes)
        current = records.get(row.asset_id)
        if manages and current != row.write_only_record:
            # The record this plan's own apply leaves: ``<fingerprint>@<applied_at>``.
            ours = current is not None and current.partition("@")[0] == row.write_only_fingerprint
            applied = (
                ours and row.action is Action.UPDATE and row.write_only_fingerprint is not None
            )
            stale.append(StaleAsset(row.asset_id, row.name, write_only=True, applied=applied))
    return stale
