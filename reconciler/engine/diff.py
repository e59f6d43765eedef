"""One asset's diff: desired spec vs live JSON -> AssetPlan with field changes and the PUT body.

An in-sync asset costs one canonicalisation and one equality check.  Only the top-level fields
that differ are looked at further, with deepdiff inside nested blocks to name the changed leaves.
The body is minimal: changed top-level fields only; a changed asset_extra_meta block is sent
whole (the raw live block, unknown keys included, with the declared fields on top: see
engine.blocks), its ordered lists of objects matched with live item by item by identity, and
the items of a changed one shown in the plan as sent; ``system_properties`` as ADD/DELETE
operations for the declared keys only; write-only fields when their fingerprint differs from the
last applied one.  Ignore rules (engine.ignore) take fields out of the spec first, and the
policy rules (engine.guardrails) judge the change once it is known.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.api.enums import NON_UPDATABLE_STATES
from reconciler.api.rules import IgnoreRule
from reconciler.constants import ASSET_NOT_FOUND
from reconciler.engine import blocks as whole_blocks
from reconciler.engine import fingerprint, guardrails, normalize, policy
from reconciler.engine.ignore import applicable, apply_ignore
from reconciler.engine.plan import Action, AssetPlan, ChangeKind, FieldChange, ItemChange
from reconciler.engine.records import Record
from reconciler.fieldpath import FieldPath as Path
from reconciler.fieldpath import format_path

NOT_FOUND_CODE = ASSET_NOT_FOUND
_SP = policy.SYSTEM_PROPERTIES
_XM = "asset_extra_meta"


@dataclass(frozen=True)
class Desired:
    """One manifest's intent, in plain data: what the engine needs and nothing else."""

    asset_id: str
    desired: dict[str, Any]  # the spec: only keys present in the manifest
    app_user_id: str | None = None
    source: str | None = None  # "manifests/a.yaml:3:1"
    name: str | None = None  # display name; defaults to the declared asset_name
    labels: dict[str, str] = field(default_factory=dict)
    # The manifest's own ``metadata.ignore``, and its target's rules (attached by the run).
    own_ignore: tuple[IgnoreRule, ...] = ()
    rules: guardrails.Rules | None = None


def same(a: Any, b: Any) -> bool:
    """Equality of canonical values that also tells ``true`` from ``1``."""
    if a != b:
        return False
    if a is b or isinstance(a, str):
        return True
    return _same_types(a, b)


def _same_types(a: Any, b: Any) -> bool:
    """Whether two values that compare equal also have the same types throughout: after
    canonicalisation (integral floats are ints) that can only fail for a boolean against a
    number, which ``==`` does not tell apart."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return all(type(v) is str or _same_types(v, b[k]) for k, v in a.items())
    if kind is list:
        return all(type(v) is str or _same_types(v, w) for v, w in zip(a, b, strict=True))
    return True


def count_leaves(path: Path, value: Any) -> int:
    """Managed leaf fields under ``path`` (a list or a system property is one leaf)."""
    if path == (_SP,):
        return max(1, len(normalize.system_properties_map(value)))
    if isinstance(value, Mapping) and value:
        return sum(count_leaves((*path, k), v) for k, v in value.items())
    return 1


def _get(value: Any, rel: Path) -> Any:
    for part in rel:
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return None
    return value


def _read_only_paths(spec: Mapping[str, Any]) -> Iterator[Path]:
    extra = spec.get(_XM)
    if not isinstance(extra, Mapping):
        return
    for block, body in extra.items():
        if policy.is_read_only((_XM, block)):
            yield (_XM, block)
        elif isinstance(body, Mapping):
            yield from ((_XM, block, key) for key in body if policy.is_read_only((_XM, block, key)))


def _block_errors(spec: Mapping[str, Any], asset_type: str | None) -> list[str]:
    extra = spec.get(_XM)
    if not isinstance(extra, Mapping):
        return []
    expected = policy.expected_block(asset_type)
    hint = f"; use {_XM}.{expected}" if expected else "; it has no writable block"
    return [
        f"{_XM}.{block} does not apply to an asset of type {asset_type}{hint}"
        for block in extra
        if block != expected
    ]


def leaf_change(path: Path, desired: Any, live: Any) -> FieldChange:
    """The FieldChange for one differing value (live is the raw value, None when absent)."""
    if policy.pattern(path) in policy.SET_LIKE:
        want = _distinct(desired)
        have = _distinct(live)
        return FieldChange(
            path,
            ChangeKind.SET,
            before=live,
            after=desired,
            added=tuple(x for k, x in want.items() if k not in have),
            removed=tuple(x for k, x in have.items() if k not in want),
        )
    if normalize.is_empty(live) and not normalize.is_empty(desired):
        return FieldChange(path, ChangeKind.ADD, before=live, after=desired)
    if normalize.is_empty(desired):
        return FieldChange(path, ChangeKind.REMOVE, before=live, after=desired)
    return FieldChange(path, ChangeKind.UPDATE, before=live, after=desired)


def _distinct(items: Any) -> dict[str, Any]:
    """The items of a set-like list by their canonical text, first occurrence kept: a service
    may put objects where strings are expected, and those cannot be dictionary keys."""
    if not isinstance(items, list | tuple):
        return {}
    out: dict[str, Any] = {}
    for item in items:
        out.setdefault(normalize.canonical_json(item), item)
    return out


def _changed_leaves(live: Any, desired: Any) -> list[Path]:
    """Paths (relative) of the leaves that differ, cut at lists (lists are compared whole)."""
    from deepdiff import DeepDiff  # only where values differ: most plans never need it

    report = DeepDiff(live, desired, view="tree", verbose_level=0)
    seen: dict[Path, None] = {}
    for items in report.values():
        for item in items:
            rel: list[str | int] = []
            for part in item.path(output_format="list"):
                if isinstance(part, int):
                    break
                rel.append(part)
            seen[tuple(rel)] = None
    return sorted(seen, key=lambda p: _order(desired, p))


def _order(tree: Any, path: Path) -> tuple[int, ...]:
    """Position of ``path`` in the manifest's own key order, so changes read top to bottom."""
    out: list[int] = []
    for part in path:
        keys = list(tree) if isinstance(tree, Mapping) else []
        out.append(keys.index(part) if part in keys else len(keys))
        tree = tree.get(part) if isinstance(tree, Mapping) else None
    return tuple(out)


class _AssetDiff:
    """Accumulates the changes, the body and the unchanged count of one asset."""

    def __init__(self, spec: dict[str, Any], live: Mapping[str, Any]) -> None:
        self.spec = spec
        self.live = live
        self.changes: list[FieldChange] = []
        self.body: dict[str, Any] = {}
        self.unchanged = 0
        self.errors: list[str] = []  # why a body cannot be built (an ambiguous list)

    def readable(self, fields: dict[str, Any]) -> None:
        desired_c = normalize.canon((), fields)
        live_c = normalize.project_live((), fields, self.live)
        if same(desired_c, live_c):  # the common case: in sync
            self.unchanged += sum(count_leaves((k,), v) for k, v in fields.items())
            return
        for key, value in fields.items():
            if same(desired_c[key], live_c[key]):
                self.unchanged += count_leaves((key,), value)
            elif key == _XM:
                self._extra_meta(value, desired_c[key], live_c[key])
            elif key == _SP:
                self._system_properties(value)
            else:
                self.changes.append(leaf_change((key,), value, self.live.get(key)))
                self.body[key] = whole_blocks.whole((key,), self.live.get(key), value)

    def _extra_meta(
        self, blocks: Mapping[str, Any], desired_c: Mapping[str, Any], live_c: Mapping[str, Any]
    ) -> None:
        live_extra = self.live.get(_XM)
        live_extra = live_extra if isinstance(live_extra, Mapping) else {}
        for block, declared in blocks.items():
            leaves = count_leaves((_XM, block), declared)
            if same(desired_c[block], live_c[block]):
                self.unchanged += leaves
                continue
            live_block = live_extra.get(block)
            changed = _changed_leaves(live_c[block], desired_c[block])
            current = whole_blocks.live_fill((_XM, block), live_block or {})
            sent = whole_blocks.lay_over((_XM, block), current, declared)
            items = self._ordered_lists(block, declared, live_block, current, sent, changed)
            children = tuple(
                replace(
                    leaf_change((_XM, block, *rel), _get(declared, rel), _get(live_block, rel)),
                    items=items.get(rel, ()),
                )
                for rel in changed
            )
            kind = ChangeKind.ADD if not current else ChangeKind.UPDATE
            self.changes.append(
                FieldChange((_XM, block), kind, current or None, sent, children=children)
            )
            self.body.setdefault(_XM, {})[block] = sent
            self.unchanged += max(0, leaves - len(children))

    def _ordered_lists(
        self,
        block: str,
        declared: Mapping[str, Any],
        live_block: Any,
        current: Mapping[str, Any],
        sent: dict[str, Any],
        changed: list[Path],
    ) -> dict[Path, tuple[ItemChange, ...]]:
        """Put the block's ordered lists of objects into ``sent`` (design.md 3.12) and say, for
        each changed one, what every item sends.

        A list that did not change is sent back as live holds it.  A changed one is matched
        with live by its identity key (:func:`engine.blocks.match_items`); when that cannot be
        done safely, the asset gets the refusal as an error instead of a body.
        """
        out: dict[Path, tuple[ItemChange, ...]] = {}
        for key, want in declared.items():
            identity = policy.LIST_IDENTITY.get((_XM, block, key))
            if identity is None or not isinstance(want, list):
                continue
            if (key,) not in changed:
                sent[key] = current.get(key, want)
                continue
            have = live_block.get(key) if isinstance(live_block, Mapping) else None
            try:
                sent[key], matched = whole_blocks.match_items(
                    (_XM, block, key), have if isinstance(have, list) else [], want, identity
                )
            except whole_blocks.Unmatchable as refusal:
                self.errors.append(str(refusal))
                continue
            if want:
                out[(key,)] = matched
        return out

    def _system_properties(self, declared: Any) -> None:
        """Per key (design.md 3.5): a declared value is ADDed when it differs, ``KEY: null`` is
        DELETEd when live has it, and live keys the manifest does not name are not touched."""
        want = normalize.system_properties_map(declared)
        have = normalize.system_properties_map(self.live.get(_SP))
        ops: list[dict[str, Any]] = []
        children: list[FieldChange] = []
        for key, value in want.items():
            if value is None:
                if key not in have:
                    self.unchanged += 1
                    continue
                children.append(FieldChange((_SP, key), ChangeKind.REMOVE, have[key], None))
                op = {"action": "DELETE", "key": key}
                if have[key] is not None:
                    op["value"] = have[key]
                ops.append(op)
                continue
            if key not in have:
                children.append(FieldChange((_SP, key), ChangeKind.ADD, None, value))
            elif not same(
                normalize.canon((_SP, key), value), normalize.canon((_SP, key), have[key])
            ):
                children.append(FieldChange((_SP, key), ChangeKind.UPDATE, have[key], value))
            else:
                self.unchanged += 1
                continue
            ops.append({"action": "ADD", "key": key, "value": value})
        before = {k: have[k] for k in want if k in have}
        self.changes.append(
            FieldChange((_SP,), ChangeKind.UPDATE, before or None, want, children=tuple(children))
        )
        self.body[_SP] = ops

    def write_only(self, plan: AssetPlan, fields: dict[str, Any], record: Record | None) -> None:
        recorded = fingerprint.parse_write_only_fingerprint(record.fingerprint if record else None)
        sent = False
        for key, value in fields.items():
            if record is not None and recorded.get(key) == fingerprint.field_fingerprint(
                key, value
            ):
                plan.write_only.append(key)
                plan.write_only_applied_at = record.applied_at
                continue
            self.changes.append(FieldChange((key,), ChangeKind.WRITE_ONLY, None, value))
            self.body[key] = value
            sent = True
        if sent:
            plan.write_only_fingerprint = fingerprint.write_only_fingerprint(fields)


def record_text(record: Record | None) -> str | None:
    """A write-only state record as a saved plan keeps it: ``<fingerprint>@<applied_at>``."""
    return f"{record.fingerprint}@{record.applied_at}" if record is not None else None


def _error(plan: AssetPlan, message: str | list[str], code: str | None = None) -> AssetPlan:
    plan.action = Action.ERROR
    plan.errors.extend([message] if isinstance(message, str) else message)
    plan.error_code = code
    return plan


def diff_asset(
    desired: Desired,
    live: Mapping[str, Any] | None,
    *,
    write_only_record: Record | None = None,
    project_id: str | None = None,
    live_read: str = "list",
) -> AssetPlan:
    """Plan one asset: what differs, the exact PUT body, or why it cannot be planned.

    ``live_read`` says how ``live`` was read (``list`` or ``show``), so that the fresh read
    before the write can read the same way.
    """
    spec: dict[str, Any] = {
        key: value if key == _SP else normalize.prune_none(value)
        for key, value in desired.desired.items()
        if value is not None
    }
    live_name = live.get("asset_name") if live else None
    plan = AssetPlan(
        asset_id=desired.asset_id,
        action=Action.NOOP,
        name=desired.name or spec.get("asset_name") or live_name,
        asset_type=spec.get("asset_type") or (live.get("asset_type") if live else None),
        source=desired.source,
        app_user_id=desired.app_user_id,
    )
    read_only = [format_path(p) for p in _read_only_paths(spec)]
    if read_only:
        return _error(
            plan,
            [f"{p} is read-only: the service fills it and it cannot be set" for p in read_only],
        )
    if live is None:
        where = f" in project {project_id}" if project_id else ""
        return _error(
            plan,
            f"asset {desired.asset_id} does not exist{where} ({NOT_FOUND_CODE}: Asset not found)",
            NOT_FOUND_CODE,
        )
    mismatched = _block_errors(spec, plan.asset_type)
    if mismatched:
        return _error(plan, mismatched)
    rules = desired.rules
    ignore = (rules.ignore if rules else ()) + desired.own_ignore
    if ignore:
        chosen = applicable(ignore, desired.asset_id, plan.asset_type, desired.labels)
        if chosen:
            spec, plan.ignored = apply_ignore(spec, live, chosen)

    plan.live_state = live.get("asset_state")
    plan.live_fingerprint = fingerprint.live_fingerprint(live)
    plan.live = live
    plan.live_read = live_read
    plan.write_only_record = record_text(write_only_record)
    work = _AssetDiff(spec, live)
    work.readable({k: v for k, v in spec.items() if k not in policy.WRITE_ONLY})
    if work.errors:
        return _error(plan, work.errors)
    work.write_only(
        plan, {k: v for k, v in spec.items() if k in policy.WRITE_ONLY}, write_only_record
    )
    order = {key: i for i, key in enumerate(spec)}
    plan.changes = sorted(work.changes, key=lambda c: order.get(str(c.path[0]), len(order)))
    plan.unchanged = work.unchanged

    if plan.live_state in NON_UPDATABLE_STATES:
        plan.action = Action.BLOCKED
        reason = live.get("block_reason_code") or live.get("reason")
        plan.errors.append(
            f"asset is {plan.live_state}, a state that does not allow updates"
            + (f" (reason: {reason})" if reason else "")
        )
        plan.write_only_fingerprint = None
        return plan
    if work.body:
        plan.action = Action.UPDATE
        plan.body = {k: work.body[k] for k in sorted(work.body, key=lambda k: order.get(k, 0))}
        if rules is not None and rules.policies:
            plan.violations = guardrails.check(
                plan, live, desired.labels, rules.policies, rules.target
            )
    return plan
