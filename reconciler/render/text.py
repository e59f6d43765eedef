"""The plan as text, in Terraform's idiom, for terminals and CI logs.

Only assets that will change, cannot be planned, or are blocked are listed; assets in sync are
counted in the closing summary.  A run over several targets shows one section per target (a
heading, that target's assets and its summary) and a closing total; a run over one target reads
exactly as a single plan. Values are JSON-quoted (strings in quotes, ``null`` for absent),
and every user-controlled string is escaped so that names or values cannot inject terminal
control sequences or fake lines into the plan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine.plan import (
    Action,
    AssetPlan,
    ChangeKind,
    FieldChange,
    ItemChange,
    Path,
    Plan,
    PlanSet,
    Summary,
)
from reconciler.escape import clean_text, escape_invisible, shown_pair
from reconciler.render.words import plural

_GREEN = "\x1b[32m"
_YELLOW = "\x1b[33m"
_RED = "\x1b[31m"
_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"

_MARKER_COLOR = {"+": _GREEN, "~": _YELLOW, "-": _RED}

NO_CHANGES = "No changes. Live assets match the manifests."


def render(plan: Plan | PlanSet, color: bool = False) -> str:
    """The run's plan: one target as a single plan, several as one section per target."""
    plans = PlanSet.of(plan)
    if len(plans.plans) == 1 and plans.plans[0].error is None:
        return render_target(plans.plans[0], color)
    out: list[str] = []
    for one in plans.plans:
        out.append(bold(target_heading(one), color))
        out.append("")
        if one.error is not None:
            out.append(target_error(one))
            out.append("")
        else:
            out.append(render_target(one, color))
    out.append(bold(total_line(plans), color))
    return "\n".join(out) + "\n"


def target_heading(plan: Plan) -> str:
    """``Target "prod" (project 0a1b..., https://metastudio...)``."""
    where = ", ".join(clean_text(part) for part in (plan.project_id, plan.endpoint) if part)
    name = quote(plan.target or "default")
    return f"Target {name}" + (f" ({where})" if where else "") + ":"


def target_error(plan: Plan) -> str:
    """What a target that could not be planned says instead of its assets."""
    return target_failure("planned", plan.unplanned, plan.error)


def target_failure(done: str, manifests: int, error: str | None) -> str:
    """``Error: this target could not be planned (3 manifests not planned): ...``."""
    return (
        f"Error: this target could not be {done} ({plural(manifests, 'manifest')} not {done}): "
        f"{clean_text(error or 'unknown error')}"
    )


def total_line(plans: PlanSet) -> str:
    """``Total: 3 to change, 120 unchanged, 1 error, across 2 targets.``"""
    where = f"across {plural(len(plans.plans), 'target')}"
    if plans.failed:
        where += f" ({len(plans.failed)} could not be planned)"
    return "Total: " + ", ".join(counts(plans.summary)) + f", {where}."


def render_target(plan: Plan, color: bool = False) -> str:
    """One target's plan: one block per listed asset, then the summary and any warnings."""
    out: list[str] = []
    listed = [a for a in plan.assets if a.action is not Action.NOOP]
    if listed:
        out.append(bold("reconciler will perform the following actions:", color))
        out.append("")
        for asset in listed:
            out.extend(render_asset(asset, color))
            out.append("")
    note = _hidden_write_only_note(plan)
    if note:
        out.append(note)
        out.append("")
    out.append(bold(summary_line(plan), color))
    ignored = ignored_line(plan.assets)
    if ignored:
        out.append(ignored)
    for warning in plan.warnings:
        out.append("")
        label = f"{_BOLD}{_YELLOW}Warning:{_RESET}" if color else "Warning:"
        out.append(f"{label} {clean_text(warning)}")
    return "\n".join(out) + "\n"


def summary_line(plan: Plan) -> str:
    """``Plan: 3 to change, 120 unchanged, 1 error.`` or the no-changes sentence."""
    s = plan.summary
    if not s.to_change and not s.errors and not s.blocked:
        return NO_CHANGES
    return "Plan: " + ", ".join(counts(s)) + "."


def counts(s: Summary) -> list[str]:
    """``["3 to change", "120 unchanged", "1 error"]``: errors and blocked only when there are."""
    parts = [f"{s.to_change} to change", f"{s.unchanged} unchanged"]
    if s.errors:
        parts.append(plural(s.errors, "error"))
    if s.blocked:
        parts.append(f"{s.blocked} blocked")
    if s.violations:
        parts.append(f"{s.violations} refused by policy")
    return parts


def ignored_by_rule(assets: Iterable[AssetPlan]) -> dict[str, int]:
    """How many fields (or entry patterns) each ignore rule left alone, by rule name."""
    out: dict[str, int] = {}
    for asset in assets:
        for item in asset.ignored:
            out[item.rule] = out.get(item.rule, 0) + 1
    return dict(sorted(out.items()))


def ignored_line(assets: Iterable[AssetPlan]) -> str:
    """``Ignored: 3 fields (campaign-tags 2, console-owns-order 1).``, or "" when none."""
    by_rule = ignored_by_rule(assets)
    if not by_rule:
        return ""
    rules = ", ".join(f"{clean_text(rule)} {count}" for rule, count in by_rule.items())
    return f"Ignored: {plural(sum(by_rule.values()), 'field')} ({rules})."


def violation_lines(asset: AssetPlan) -> list[str]:
    """``# refused by policy keep-live-avatars-active: live avatars stay active``."""
    return [
        clean_text(
            f"refused by policy {v.rule}: {v.message}" + (f" ({v.error})" if v.error else "")
        )
        for v in asset.violations
    ]


def ignored_lines(asset: AssetPlan) -> list[str]:
    """One line per field an ignore rule left alone; for list entries, what was kept and,
    when the list is sent, the whole list the body carries."""
    sent = {c.dotted: c.after for c in asset.changes}
    out: list[str] = []
    for item in asset.ignored:
        rule = clean_text(item.rule)
        if item.pattern is None:
            out.append(f"ignored by rule {rule}: {clean_text(item.path)}")
            continue
        kept = ", ".join(quote(v) for v in item.kept) or "none"
        line = (
            f"ignored by rule {rule}: {clean_text(item.path)} entries matching "
            f"{quote(item.pattern)} (kept from live: {kept})"
        )
        if item.path in sent:
            line += f"; sent whole: {quote(sent[item.path])}"
        out.append(line)
    return out


def asset_label(asset: AssetPlan) -> str:
    """``asset "Sara Model" (93769b5a-...)``, with the name JSON-quoted and made safe."""
    ident = clean_text(asset.asset_id)
    if asset.name:
        return f"asset {quote(asset.name)} ({ident})"
    return f"asset ({ident})"


def header(asset: AssetPlan) -> str:
    """The one-line description of what happens to the asset (without the leading ``# ``)."""
    label = asset_label(asset)
    if asset.action is Action.UPDATE:
        return f"{label} will be updated in-place"
    if asset.action is Action.NOOP:
        return f"{label} is in sync"
    reason = _reason(asset)
    if asset.action is Action.BLOCKED:
        return f"{label} is blocked and will not be updated: {reason}"
    return f"{label} cannot be planned: {reason}"


def render_asset(asset: AssetPlan, color: bool = False) -> list[str]:
    """The lines for one asset: its header and, for an update, its field changes."""
    lines = [bold(f"  # {header(asset)}", color)]
    lines.extend(f"  # ! {line}" for line in violation_lines(asset))
    if asset.action in (Action.ERROR, Action.BLOCKED):
        for extra in asset.errors[1:]:
            lines.append(f"  #   {clean_text(extra)}")
        if asset.source:
            lines.append(f"  #   (manifest: {clean_text(asset.source)})")
        return lines
    if asset.action is not Action.UPDATE:
        return lines
    lines.append(marked(2, "~", "asset {", color))
    block = _Block(col=8)
    for change in asset.changes:  # the engine's order: the manifest's, top to bottom
        _add_change(block, change, (), color)
    changed = {c.dotted for c in asset.changes}
    quiet = [w for w in asset.write_only if w not in changed]
    if quiet:
        names = ", ".join(clean_text(w) for w in quiet)
        since = (
            f"unchanged since last apply at {clean_text(asset.write_only_applied_at)}"
            if asset.write_only_applied_at
            else "unchanged since last apply"
        )
        block.comments.append(f"# write-only: {names}, cannot be read back; {since}, not re-sent")
    if asset.unchanged:
        block.comments.append(_hidden(asset.unchanged, "attribute"))
    block.comments.extend(f"# {line}" for line in ignored_lines(asset))
    lines.extend(block.lines(color))
    lines.append("    }")
    return lines


# --- nested blocks ---------------------------------------------------------------------------


@dataclass
class _Entry:
    marker: str
    name: str
    text: str = ""  # "= old -> new" for one-line entries
    opener: str = ""  # "[" or "{" for multi-line entries
    inner: _Block | None = None
    element: bool = False  # an object inside a list: no name, closed with "},"


@dataclass
class _Block:
    """Sibling entries at one indentation, aligned on ``=`` as Terraform does."""

    col: int
    entries: list[_Entry] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    items: list[tuple[str, str]] = field(default_factory=list)  # list elements: (marker, value)

    def lines(self, color: bool) -> list[str]:
        out: list[str] = []
        width = max((len(e.name) for e in self.entries), default=0)
        for entry in self.entries:
            name = entry.name.ljust(width)
            if entry.inner is None:
                out.append(marked(self.col - 2, entry.marker, f"{name} {entry.text}", color))
                continue
            if entry.element:
                head = entry.opener + (f" {entry.text}" if entry.text else "")
            else:
                head = f"{name} = {entry.opener}"
            out.append(marked(self.col - 2, entry.marker, head, color))
            out.extend(entry.inner.lines(color))
            closer = "]" if entry.opener == "[" else "}"
            out.append(" " * self.col + closer + ("," if entry.element else ""))
        for marker, value in self.items:
            out.append(marked(self.col - 2, marker, f"{value},", color))
        out.extend(" " * self.col + comment for comment in self.comments)
        return out


def _add_change(block: _Block, change: FieldChange, parent: Path, color: bool) -> None:
    rel = _relative(change.path, parent)
    if len(rel) > 1:
        # A leaf reported deeper than one level below its parent: open the levels between.
        inner = _child_block(block, rel[0])
        _add_change(inner, change, (*parent, rel[0]), color)
        return
    name = clean_text(str(rel[0])) if rel else clean_text(change.dotted)
    kind = change.kind
    if kind is ChangeKind.WRITE_ONLY:
        block.entries.append(_Entry("~", name, "= (write-only, will be sent)"))
    elif kind is ChangeKind.SET:
        inner = _Block(col=block.col + 4)
        inner.items.extend(("+", quote(v)) for v in change.added)
        inner.items.extend(("-", quote(v)) for v in change.removed)
        kept = _count_kept(change)
        if kept:
            inner.comments.append(_hidden(kept, "element"))
        block.entries.append(_Entry("~", name, opener="[", inner=inner))
    elif change.items:
        inner = _Block(col=block.col + 4)
        inner.entries.extend(_list_items(change.items, inner.col + 4))
        marker = "+" if kind is ChangeKind.ADD else "~"
        block.entries.append(_Entry(marker, name, opener="[", inner=inner))
    elif change.children or (isinstance(change.before, dict) and isinstance(change.after, dict)):
        inner = _Block(col=block.col + 4)
        children = change.children or _derive_children(change)
        for child in children:
            _add_change(inner, child, change.path, color)
        kept = _count_unchanged_keys(change, children)
        if kept:
            inner.comments.append(_hidden(kept, "attribute"))
        marker = "+" if kind is ChangeKind.ADD else "~"
        block.entries.append(_Entry(marker, name, opener="{", inner=inner))
    elif kind is ChangeKind.ADD or (change.before is None and kind is not ChangeKind.REMOVE):
        block.entries.append(_Entry("+", name, f"= {quote(change.after)}"))
    elif kind is ChangeKind.REMOVE:
        block.entries.append(
            _Entry("-", name, f"= {quote(change.before)} -> {quote(change.after)}")
        )
    else:
        block.entries.append(_Entry("~", name, f"= {change_values(change.before, change.after)}"))


def _list_items(items: Iterable[ItemChange], col: int) -> list[_Entry]:
    """An ordered list of objects item by item, every value the body sends shown; values the
    manifest leaves out are marked as kept from the live item the engine matched."""
    out: list[_Entry] = []
    position = 0
    for item in items:
        inner = _Block(col=col)
        if item.after is None:  # a live item the body leaves out
            for key, value in _pairs(item.before):
                inner.entries.append(_Entry("-", key, f"= {quote(value)} -> null"))
            out.append(_Entry("-", "", opener="{", inner=inner, element=True))
            continue
        before = item.before if isinstance(item.before, dict) else None
        for key, value in _pairs(item.after):
            if before is None:
                inner.entries.append(_Entry("+", key, f"= {quote(value)}"))
            elif key in item.changed and before.get(key) is not None:
                inner.entries.append(_Entry("~", key, f"= {change_values(before[key], value)}"))
            elif key in item.changed:
                inner.entries.append(_Entry("+", key, f"= {quote(value)}"))
            elif key in item.kept:
                inner.entries.append(_Entry(" ", key, f"= {quote(value)}  # kept from live"))
            else:
                inner.entries.append(_Entry(" ", key, f"= {quote(value)}"))
        moved = item.live_index is not None and item.live_index != position
        note = f"# moved from [{item.live_index}]" if moved else ""
        if before is None:
            marker = "+"
        elif item.changed or moved:
            marker = "~"
        else:
            marker = " "
        out.append(_Entry(marker, "", note, opener="{", inner=inner, element=True))
        position += 1
    return out


def _pairs(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [(clean_text(str(key)), item) for key, item in value.items()]
    return [("(item)", value)]


def _child_block(block: _Block, key: str | int) -> _Block:
    name = clean_text(str(key))
    for entry in block.entries:
        if entry.name == name and entry.opener == "{" and entry.inner is not None:
            return entry.inner
    inner = _Block(col=block.col + 4)
    block.entries.append(_Entry("~", name, opener="{", inner=inner))
    return inner


def _relative(path: Path, parent: Path) -> Path:
    if parent and path[: len(parent)] == parent:
        return path[len(parent) :]
    return path if not parent else path[-1:]


def _derive_children(change: FieldChange) -> list[FieldChange]:
    """Leaf changes of a nested object whose engine entry carried none (a plain comparison)."""
    before = change.before if isinstance(change.before, dict) else {}
    after = change.after if isinstance(change.after, dict) else {}
    out: list[FieldChange] = []
    for key in list(before) + [k for k in after if k not in before]:
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        path = (*change.path, key)
        if key not in after:
            out.append(FieldChange(path, ChangeKind.REMOVE, before=old))
        elif key not in before or old is None:
            out.append(FieldChange(path, ChangeKind.ADD, after=new))
        else:
            out.append(FieldChange(path, ChangeKind.UPDATE, before=old, after=new))
    return out


def _count_unchanged_keys(change: FieldChange, children: Iterable[FieldChange]) -> int:
    before = change.before if isinstance(change.before, dict) else {}
    after = change.after if isinstance(change.after, dict) else {}
    changed = {_relative(c.path, change.path)[:1] for c in children}
    keys = set(before) | set(after)
    return sum(1 for key in keys if (key,) not in changed)


def _count_kept(change: FieldChange) -> int:
    if isinstance(change.after, list):
        return max(len(change.after) - len(change.added), 0)
    if isinstance(change.before, list):
        return max(len(change.before) - len(change.removed), 0)
    return 0


# --- formatting helpers ----------------------------------------------------------------------


def change_values(before: Any, after: Any) -> str:
    """``"old" -> "new"``; when the two would print alike (``"Café" -> "Café"``), both escaped
    and a note saying how they differ, e.g. ``(differs only in Unicode normalisation)``."""
    shown_before, shown_after, note = shown_pair(before, after, quote)
    return f"{shown_before} -> {shown_after}" + (f" ({note})" if note else "")


def quote(value: Any) -> str:
    """A value as Terraform shows it: JSON (``"text"``, ``null``, ``[1, 2]``), made safe."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = json.dumps(str(value), ensure_ascii=False)
    return escape_invisible(text)


def _reason(asset: AssetPlan) -> str:
    if asset.errors:
        reason = clean_text(asset.errors[0])
    elif asset.action is Action.BLOCKED and asset.live_state:
        reason = f"state {clean_text(asset.live_state)} does not allow updates"
    else:
        reason = "unknown error"
    if asset.error_code and asset.error_code not in reason:
        reason += f" [{clean_text(asset.error_code)}]"
    return reason


def _hidden(count: int, noun: str) -> str:
    return f"# ({count} unchanged {noun}{'s' if count != 1 else ''} hidden)"


def _hidden_write_only_note(plan: Plan) -> str | None:
    quiet = [a for a in plan.assets if a.action is Action.NOOP and a.write_only]
    if not quiet:
        return None
    fields = sorted({w for a in quiet for w in a.write_only})
    count = len(quiet)
    return (
        f"Note: {count} unlisted asset{'s manage' if count != 1 else ' manages'} write-only fields "
        f"({clean_text(', '.join(fields))}) that cannot be read back; they are unchanged since "
        "the last apply and will not be re-sent."
    )


def marked(col: int, marker: str, rest: str, color: bool) -> str:
    """``rest`` after a change marker (``+ ~ -``) at column ``col``, the marker coloured."""
    shown = f"{_MARKER_COLOR[marker]}{marker}{_RESET}" if color and marker != " " else marker
    return f"{' ' * col}{shown} {rest}"


def bold(text: str, color: bool) -> str:
    return f"{_BOLD}{text}{_RESET}" if color else text
