"""The apply result as a JSON document (``reconciler apply --report FILE``): per asset its
outcome word, attempts and the service's answer, and the counts of the summary.

The outcome words are :class:`reconciler.engine.apply.Outcome`'s values, the same words the
per-asset lines use, so a pipeline can tell "applied (answer lost)" from "outcome unknown"
without parsing text.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.engine.apply import ApplyResult, AssetResult

FORMAT_VERSION = "1.0"


def document(
    result: ApplyResult,
    per_target: dict[str, ApplyResult] | None = None,
    *,
    allowed: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The JSON-ready form of an apply result (``per_target``: each target's, in a run over
    several; ``allowed``: the policy rules ``--allow-policy`` let through, with their assets)."""
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "summary": _counts(result),
        "exit_code": result.exit_code,
        "interrupted_by": result.interrupted_by if result.interrupted else None,
        "stopped_by": result.halted,
        "assets": [_asset(item) for item in result.results],
        "allowed_policies": [
            {"rule": rule, "asset_ids": list(ids)} for rule, ids in sorted((allowed or {}).items())
        ],
    }
    if per_target and len(per_target) > 1:
        doc["targets"] = {name: _counts(item) for name, item in per_target.items()}
    return doc


def render(
    result: ApplyResult,
    per_target: dict[str, ApplyResult] | None = None,
    *,
    allowed: dict[str, list[str]] | None = None,
) -> str:
    return (
        json.dumps(document(result, per_target, allowed=allowed), indent=2, ensure_ascii=False)
        + "\n"
    )


def _counts(result: ApplyResult) -> dict[str, int]:
    return {
        "changed": result.changed,
        "answers_lost": result.answers_lost,
        "failed": result.failed,
        "outcome_unknown": result.unknown,
        "changed_since_plan": result.changed_since_plan,
        "not_sent": result.not_sent,
        "not_started": result.not_started,
        "not_applied": result.not_applied,
    }


def _asset(item: AssetResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "asset_id": item.asset_id,
        "name": item.name,
        "outcome": item.outcome.value,
        "attempts": item.attempts,
    }
    optional = {
        "target": item.target,
        "status": item.status,
        "error_code": item.error_code,
        "error_msg": item.error_msg,
        "request_id": item.request_id,
        "answer_lost": item.lost,
        "changed_fields": list(item.changed) or None,
        "gone": item.gone or None,
        "reason": item.reason,
        "not_converged": [m.path for m in item.mismatches] or None,
        "wait_seconds": item.waiting,
        "deadline": item.deadline or None,
        "stopped_by": item.halted,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out
