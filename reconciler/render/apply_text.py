"""The words of ``apply``: one line per asset result, the closing summary, refusals.

Everything here is a view of engine data (:mod:`reconciler.engine.apply`,
:mod:`reconciler.engine.safety`); the engine itself holds no user-facing text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from reconciler.engine.apply import (
    ApplyResult,
    AssetResult,
    Mismatch,
    Outcome,
    PlanStale,
    StaleAsset,
    not_applied,
)
from reconciler.engine.guardrails import PolicyViolated
from reconciler.engine.plan import Action, ChangedSince, Plan, PlanSet, Violation
from reconciler.engine.safety import Crossing, SafetyPolicy, ThresholdCrossed, threshold
from reconciler.escape import clean_text
from reconciler.render.words import plural
from reconciler.state import LockHolder


def result_line(result: AssetResult) -> str:
    """One stdout line, e.g. ``93769b5a-...: updated (Sara Model)``; in a run over several
    targets the target comes first (``prod: 93769b5a-...: updated``).  Everything that came
    from the service or from live data is cleaned, so it cannot start a line of its own."""
    line = _result_line(result)
    return clean_text(f"{result.target}: {line}" if result.target else line)


def _result_line(result: AssetResult) -> str:
    name = f" ({result.name})" if result.name else ""
    rid = f" (request id {result.request_id})" if result.request_id else ""
    if result.outcome is Outcome.UPDATED:
        return f"{result.asset_id}: updated{name}"
    if result.outcome is Outcome.ANSWER_LOST:
        return (
            f"{result.asset_id}: applied (answer lost){name}: no answer came to the PUT "
            f"({result.lost}), and reading the asset back shows the change landed"
        )
    if result.outcome is Outcome.UNKNOWN:
        return (
            f"{result.asset_id}: OUTCOME UNKNOWN{name}: no answer came to the PUT "
            f"({result.lost}), and the asset read back shows neither the planned change nor "
            "the state it was planned from (or could not be read); run `reconciler plan` to "
            "see what it holds now"
        )
    if result.outcome is Outcome.NOT_SENT:
        return f"{result.asset_id}: not sent{name}: {_not_sent_reason(result)}"
    if result.outcome is Outcome.FAILED:
        if result.wrong_asset is not None:
            detail = (
                f"the service answered the PUT with asset {result.wrong_asset}; run "
                "`reconciler plan` to see what this asset holds now"
            )
        else:
            parts = [str(result.status) if result.status is not None else None]
            parts += [result.error_code, result.error_msg]
            detail = " ".join(p for p in parts if p) or "unknown error"
            detail = _STAGES.get(result.stage or "", "") + detail
        return f"{result.asset_id}: FAILED {detail}{rid}{name}"
    if result.outcome is Outcome.CHANGED:
        if result.gone:
            what = "the asset no longer exists"
        elif result.changed:
            what = f"{', '.join(result.changed)} changed"
        else:
            what = "the live asset changed"
        return (
            f"{result.asset_id}: CHANGED SINCE PLAN{name}: {what} after the plan was made; "
            "nothing was sent (run `reconciler plan` to see the new state)"
        )
    if result.outcome is Outcome.NOT_CONVERGED:
        fields = "; ".join(mismatch_line(m) for m in result.mismatches)
        return f"{result.asset_id}: NOT CONVERGED{name}: the service did not take {fields}{rid}"
    if result.outcome is Outcome.NOT_APPLIED:
        return f"{result.asset_id}: not applied{name}: {_not_applied_reason(result)}"
    return f"{result.asset_id}: not started{name}"


def mismatch_line(mismatch: Mismatch) -> str:
    """``asset_order = 7 (service has 1)``: a field the service did not take."""
    if mismatch.removal:
        return f"{mismatch.path} removal (service still has {_show(mismatch.live)})"
    if mismatch.whole:
        return f"{mismatch.path} (service has {_show(mismatch.live)})"
    return f"{mismatch.path} = {_show(mismatch.sent)} (service has {_show(mismatch.live)})"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


_STAGES = {
    "read": "nothing was sent: reading the asset right before writing it failed: ",
    "read-back": "the PUT was accepted, but reading the asset back to verify it failed: ",
}


def _not_sent_reason(result: AssetResult) -> str:
    tries = plural(result.attempts, "attempt")
    if result.halted:
        return f"the run stopped writing: {result.halted}"
    if result.deadline:
        return (
            f"after {tries} that did not land, the next one would wait {result.waiting:g} s, past "
            "the run's --timeout; nothing of it landed"
        )
    return f"stopped while waiting to try again after {tries} that did not land; nothing landed"


def _not_applied_reason(result: AssetResult) -> str:
    reason = result.reason or (
        f"asset state {result.live_state} cannot be updated"
        if result.blocked
        else "could not be planned"
    )
    if result.blocked and not reason.startswith("blocked"):
        reason = f"blocked: {reason}"
    return reason


def summary(result: ApplyResult) -> str:
    """The closing line, in Terraform's words."""
    lost = f" ({result.answers_lost} with the answer lost)" if result.answers_lost else ""
    counts = f"{result.changed} changed{lost}, {result.failed} failed"
    extra = ""
    if result.unknown:
        extra += f", {result.unknown} outcome unknown (run `reconciler plan`)"
    if result.not_sent:
        extra += f", {result.not_sent} not sent"
    if result.changed_since_plan:
        extra += f", {result.changed_since_plan} changed since plan (not sent)"
    if result.not_applied:
        extra += f", {result.not_applied} not applied (see the plan)"
    if result.not_started:
        extra += f", {result.not_started} not started"
    if result.interrupted:
        cause = result.interrupted_by
        by = f" by {cause}" if cause and cause != "Ctrl-C" else ""
        return f"Apply interrupted{by}: {counts}{extra}."
    if result.halted:
        return f"Apply stopped ({result.halted}): {counts}{extra}."
    if result.exit_code == 0:
        return f"Apply complete! {counts}{extra}."
    return f"Apply failed: {counts}{extra}."


def nothing_to_send(plans: PlanSet) -> tuple[str, str] | None:
    """When a plan has no change to send only because its rows are errors or blocked: the
    error line and the closing summary (nothing was sent, the plan above says why)."""
    rows = plans.by_action(Action.ERROR) + plans.by_action(Action.BLOCKED)
    if not rows:
        return None
    error = (
        f"nothing was applied: {plural(len(rows), 'asset')} could not be planned "
        "(see the plan above)"
    )
    return error, summary(ApplyResult([not_applied(row) for row in rows]))


def stale_line(item: StaleAsset) -> str:
    name = f" ({item.name})" if item.name else ""
    if item.applied:
        reason = "already shows this plan's changes (applied since the plan was made)"
    elif item.write_only:
        reason = (
            "its write-only values (review_config, shared_config) were applied again since the "
            "plan was made; this plan would send older ones back"
        )
    else:
        reason = "no longer exists" if item.gone else "changed since the plan was made"
    return clean_text(f"{item.asset_id}{name}: {reason}")


def stale_message(stale: Iterable[StaleAsset]) -> str:
    """The refusal for a stale plan: every stale asset and what to do."""
    items = list(stale)
    lines = [
        f"the saved plan is stale: {plural(len(items), 'asset')} changed since it was made; "
        "nothing was sent.",
        *(f"  {stale_line(item)}" for item in items),
        "Run `reconciler plan --out PLANFILE` again and apply the new plan.",
    ]
    return "\n".join(lines)


def crossing_message(crossing: Crossing) -> str:
    """The warning/refusal text for a plan above the safety threshold."""
    return (
        f"{crossing.changing} of {crossing.managed} managed assets ({100 * crossing.share:.0f}%) "
        f"would change, more than the {crossing.max_change_percent:g}% safety threshold; apply "
        "refuses this without --force"
    )


def threshold_message(plan: Plan, policy: SafetyPolicy | None = None) -> str | None:
    """The warning/refusal text when the plan crosses the threshold (its own, unless
    ``policy`` is given), else None."""
    crossing = threshold(plan, policy) if policy is not None else plan.crossing
    return crossing_message(crossing) if crossing is not None else None


def _crossing_lines(reason: ThresholdCrossed) -> list[str]:
    return [
        f"target {target}: {crossing_message(c)}" if reason.several else crossing_message(c)
        for target, c in reason.crossings
    ]


def threshold_refusal(reason: ThresholdCrossed) -> str:
    """Apply's refusal of a plan above a threshold.  When the plan was just shown, its warnings
    already gave the numbers, so the threshold is said once."""
    if not reason.shown:
        return "\n".join([*_crossing_lines(reason), THRESHOLD_REFUSAL])
    where = (
        f"target {', '.join(str(target) for target, _ in reason.crossings)}: "
        if reason.several
        else ""
    )
    return where + THRESHOLD_REFUSAL


def threshold_forced(reason: ThresholdCrossed) -> list[str]:
    """The warnings of a saved plan applied above its threshold with ``--force``."""
    return [f"{line} (--force given)" for line in _crossing_lines(reason)]


def already_applied(reason: PlanStale) -> str:
    """What applying a saved plan a second time says: nothing to do, nothing sent."""
    count = sum(len(items) for _target, items in reason.stale)
    return (
        "The saved plan was already applied: the live state shows every change it holds "
        f"({plural(count, 'asset')}); nothing was sent."
    )


def stale_refusal(reason: PlanStale) -> str:
    """Apply's refusal of a stale saved plan, per target when it covers several."""
    if not reason.several:
        return stale_message(reason.stale[0][1])
    return "\n".join(f"target {target}: {stale_message(items)}" for target, items in reason.stale)


def with_warnings(plans: PlanSet) -> PlanSet:
    """Each target's warnings in words, from its data (the run narrowed by ``--asset`` /
    ``--selector`` first, the safety threshold last), so that every view of the plan (text,
    markdown, JSON, a saved plan file) says the same; a warning already there is not repeated."""
    for plan in plans.plans:
        words = list(plan.warnings)
        if plan.targeting is not None:
            t = plan.targeting
            targeted = targeted_message(t.selected, t.declared, t.flags)
            if targeted not in words:
                words.insert(0, targeted)
        if plan.changed_since is not None:
            at = 1 if plan.targeting is not None else 0
            for line in changed_since_lines(plan.changed_since):
                if line not in words:
                    words.insert(at, line)
                    at += 1
        crossed = threshold_message(plan)
        if crossed is not None and crossed not in words:
            words.append(crossed)
        plan.warnings = words
    return plans


def lock_wait_line(holder: LockHolder, timeout: float) -> str:
    """Said once when apply starts waiting for another writer's lock."""
    return f"Waiting up to {timeout:g}s for the project's lock, held by {holder.describe()}..."


THRESHOLD_REFUSAL = (
    "nothing was sent: the plan is above the safety threshold (see the warning above). Re-run "
    "with --force to apply anyway, or set safety.max_change_percent in reconciler.yaml "
    "(--max-change-percent for one run)."
)


def targeted_message(selected: int, total: int, flags: str) -> str:
    """The warning for a run narrowed by ``--asset`` / ``--selector`` (Terraform's -target)."""
    return (
        f"targeting is in effect ({flags}): this run covers {selected} of "
        f"{plural(total, 'manifest')} of the target, so changes to the other assets are neither "
        f"shown nor applied; run without {flags} to reconcile everything"
    )


def changed_since_lines(changed: ChangedSince) -> list[str]:
    """What a ``--changed-since`` plan covers, then each document removed since the revision
    (its asset is left as it is: nothing is sent for it)."""
    ref = changed.ref
    lines = [
        f"changed since {ref}: this plan covers the {plural(changed.planned, 'document')} "
        f"changed since {ref}, read by id; the other managed assets are neither read nor "
        f"shown (run without --changed-since to reconcile everything); the safety threshold "
        f"counts all {plural(changed.managed, 'managed asset')}"
    ]
    lines += [
        f"no longer managed, nothing sent: asset {item.asset_id} (its document in {item.file} "
        f"was removed since {ref}; the live asset is left as it is)"
        for item in changed.removed
    ]
    return lines


def violation_text(violation: Violation) -> str:
    """One violation: the rule's name and message, and why it failed when it could not be
    evaluated (such a rule refuses the change too)."""
    text = f"policy {violation.rule}: {violation.message}"
    return clean_text(f"{text} ({violation.error})" if violation.error else text)


def violations_text(violations: Iterable[Violation]) -> str:
    return "; ".join(violation_text(v) for v in violations)


def policy_refusal(reason: PolicyViolated) -> str:
    """Apply's refusal of a plan with policy violations: each refused asset and its rules."""
    lines = [
        f"policy rules refuse {plural(len(reason.violations), 'change')}; nothing was sent:",
    ]
    for target, asset in reason.violations:
        where = f"target {target}: " if reason.several and target else ""
        name = f" ({asset.name})" if asset.name else ""
        lines.append(
            clean_text(f"  {where}{asset.asset_id}{name}: {violations_text(asset.violations)}")
        )
    names = sorted({v.rule for _t, a in reason.violations for v in a.violations})
    flags = " ".join(f"--allow-policy {clean_text(n)}" for n in names)
    lines.append(f"Change the manifests, or re-run with {flags} to apply anyway.")
    return "\n".join(lines)


def allowed_lines(allowed: dict[str, list[str]]) -> list[str]:
    """The summary's record of the policy rules ``--allow-policy`` let through."""
    return [
        clean_text(
            f"Allowed by --allow-policy {rule}: {plural(len(ids), 'asset')} ({', '.join(ids)})"
        )
        for rule, ids in sorted(allowed.items())
    ]
