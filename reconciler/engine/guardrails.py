"""Policy rules over a planned change (docs/policies.md): which changes a rule refuses.

Each rule's ``deny`` is a CEL expression compiled when ``reconciler.yaml`` is read
(``api/rules.py``); here it is evaluated, without any I/O, for every asset the plan would
change and the rule's match covers.  ``true`` refuses the change; an expression that cannot be
evaluated (a field that is absent, a result that is not a boolean) refuses it too, with the
reason: a rule that fails must never pass silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.api.rules import IgnoreRule, PolicyRule
from reconciler.engine import normalize
from reconciler.engine.plan import AssetPlan, FieldChange, Violation

_SP = "system_properties"
_XM = "asset_extra_meta"


@dataclass(frozen=True)
class Rules:
    """What one target's configuration says about every asset of it: the ignore rules (the
    file's, then the target's) and the policy rules, with the target's name for ``target``."""

    ignore: tuple[IgnoreRule, ...] = ()
    policies: tuple[PolicyRule, ...] = ()
    target: str | None = None


@dataclass(frozen=True)
class PolicyViolated:
    """Apply's refusal as data: the assets (with their target) whose change a policy refuses
    and that no ``--allow-policy`` lets through."""

    violations: list[tuple[str | None, AssetPlan]]
    several: bool


def _changed_paths(changes: Iterable[FieldChange]) -> list[str]:
    out: list[str] = []
    for change in changes:
        out.append(change.dotted)
        if change.children:
            out.extend(_changed_paths(change.children))
    return out


def _with_properties(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The asset's fields with ``system_properties`` as a map ``KEY: value``."""
    out = dict(fields)
    if _SP in out:
        out[_SP] = normalize.system_properties_map(out[_SP])
    return out


def after_put(live: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The asset's fields as they will be once ``body`` is applied: top-level fields replaced,
    each sent block replaced whole, system properties added or deleted key by key."""
    after = _with_properties(live)
    for key, value in body.items():
        if key == _XM and isinstance(value, Mapping):
            blocks = after.get(_XM)
            after[_XM] = {**(blocks if isinstance(blocks, Mapping) else {}), **value}
        elif key == _SP:
            properties = dict(after.get(_SP) or {})
            for op in value:
                if op.get("action") == "DELETE":
                    properties.pop(op["key"], None)
                else:
                    properties[op["key"]] = op.get("value")
            after[_SP] = properties
        else:
            after[key] = value
    return after


def variables(
    plan: AssetPlan, live: Mapping[str, Any], labels: Mapping[str, str], target: str | None
) -> dict[str, Any]:
    """The variables a condition sees (docs/policies.md)."""
    return {
        "before": _with_properties(live),
        "after": after_put(live, plan.body or {}),
        "changes": _changed_paths(plan.changes),
        "asset": {"id": plan.asset_id, "type": plan.asset_type, "state": plan.live_state},
        "labels": dict(labels),
        "target": target or "default",
    }


def evaluate(rule: PolicyRule, context: Mapping[str, Any]) -> Violation | None:
    """The rule's verdict on one change: None lets it through."""
    try:
        verdict = rule.program.execute(dict(context))
    except Exception as exc:  # any failure of a rule refuses the change
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, KeyError):
            detail = f"no such key or field: {detail}"
        return Violation(rule.name, rule.message, error=f"could not evaluate: {detail}")
    if verdict is True:
        return Violation(rule.name, rule.message)
    if verdict is False:
        return None
    shown = repr(verdict)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return Violation(
        rule.name, rule.message, error=f"could not evaluate: gave {shown}, not true or false"
    )


def check(
    plan: AssetPlan,
    live: Mapping[str, Any],
    labels: Mapping[str, str],
    rules: Sequence[PolicyRule],
    target: str | None,
) -> list[Violation]:
    """Every policy rule that refuses this asset's change (only a change can be refused)."""
    chosen = [r for r in rules if r.match.covers(plan.asset_id, plan.asset_type, labels)]
    if not chosen:
        return []
    context = variables(plan, live, labels, target)
    return [v for rule in chosen if (v := evaluate(rule, context)) is not None]


def refused(
    violated: Sequence[tuple[str | None, AssetPlan]], allowed: Iterable[str]
) -> list[tuple[str | None, AssetPlan]]:
    """The violations that ``allowed`` (the names given with ``--allow-policy``) does not let
    through: an asset stays refused while one of its rules is not allowed."""
    names = set(allowed)
    return [
        (target, asset)
        for target, asset in violated
        if any(v.rule not in names for v in asset.violations)
    ]
