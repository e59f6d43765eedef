"""The plan as GitHub-flavoured Markdown, for pull-request comments and drift issues.

The document starts with a hidden marker (``<!-- reconciler:plan target=NAME -->``) by which a
bot finds its own comment to update it in place, then a heading, a summary table, and one
collapsible ``<details>`` section per changed, errored or blocked asset holding the text plan of
that asset in a ``diff`` fence. It ends with the commit and CI run when they are known.

GitHub rejects a comment or issue body over 65,536 characters, so sections are added while the
whole document (note and footer included) stays within ``max_chars``; the assets left out are
counted exactly in a note (the JSON plan and ``reconciler show`` always have everything).

Escaping (:func:`escape`) touches only what GitHub would read as markup, and uses character
references because they read literally both in Markdown text and inside HTML blocks such as
``<summary>``: ``asset_name`` and ``Sara Model (33%)`` stay as they are.

A run over several targets gets one marker naming them all (``target=prod,staging``), the total,
a table of targets, then one section per target (each with its own summary), sharing the budget.
"""

from __future__ import annotations

import re

from reconciler.ci import CiRun
from reconciler.engine.plan import Action, AssetPlan, Plan, PlanSet
from reconciler.escape import clean_text
from reconciler.render import text
from reconciler.render.words import plural

_ACTION_LABEL = {
    Action.UPDATE: "update in-place",
    Action.ERROR: "cannot be planned",
    Action.BLOCKED: "blocked",
    Action.NOOP: "in sync",
}
_ACTION_ICON = {Action.UPDATE: "~", Action.ERROR: "!", Action.BLOCKED: "!", Action.NOOP: ""}
# Always markup somewhere: HTML (& < > "), code (`), emphasis and strike (* ~), links ([ ]),
# table cells (|), escapes (\), math ($), mentions (@).
_ALWAYS = re.compile(r"[&<>\"`*~\[\]|\\$@]")
# "_" is emphasis only at a word boundary: snake_case names need no escaping.
_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_NAMED = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
# Bare URLs and www. names become links on GitHub; break them so names cannot plant links.
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(:)(?=//)|(?<=www)(\.)")
_MARKER = re.compile(r"^(\s*)([+~-]) ")
_MARKER_VALUE = re.compile(r"[^A-Za-z0-9._,-]")
# GitHub's limit on the body of a comment or an issue, in characters.
GITHUB_LIMIT = 65_536
DEFAULT_MAX_CHARS = GITHUB_LIMIT


def marker(kind: str, target: str | None) -> str:
    """``<!-- reconciler:plan target=prod -->``: the hidden line a bot finds its comment by."""
    value = _MARKER_VALUE.sub(lambda m: f"%{ord(m.group(0)):02X}", target or "default")
    return f"<!-- reconciler:{kind} target={value} -->"


def render(
    plan: Plan | PlanSet,
    title: str = "reconciler plan",
    max_chars: int = DEFAULT_MAX_CHARS,
    ci: CiRun | None = None,
) -> str:
    """The run's plan as one Markdown document of at most ``max_chars`` characters.

    One target reads as a single plan; several get the total, a table of targets, then one
    section per target (its own summary and assets), sharing the character budget.
    """
    plans = PlanSet.of(plan)
    if len(plans.plans) == 1 and plans.plans[0].error is None:
        return render_target(plans.plans[0], title, max_chars, ci)
    names = ",".join(p.target or "default" for p in plans.plans)
    out: list[str] = [marker("plan", names), f"## {escape(title)}", ""]
    out += [f"**{escape(text.total_line(plans))}**", ""]
    out += [
        "| target | project | to change | unchanged | errors | blocked |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for one in plans.plans:
        s = one.summary
        errors = "could not be planned" if one.error is not None else str(s.errors)
        out.append(
            f"| {code(one.target or 'default')} | {code(one.project_id or '')} "
            f"| {s.to_change} | {s.unchanged} | {errors} | {s.blocked} |"
        )
    out.append("")
    footer = ci_footer(ci)
    share = (max_chars - size(out) - size(footer)) // len(plans.plans)
    for one in plans.plans:
        heading = f"target {one.target or 'default'}"
        if one.error is not None:
            out += [
                f"### {escape(heading)}",
                "",
                f"> [!CAUTION]\n> {escape(text.target_error(one))}",
                "",
            ]
        else:
            section = render_target(one, heading, share, level="###", with_marker=False)
            out += [*section.splitlines(), ""]
    return _join(out + footer)


def render_target(
    plan: Plan,
    title: str = "reconciler plan",
    max_chars: int = DEFAULT_MAX_CHARS,
    ci: CiRun | None = None,
    *,
    level: str = "##",
    with_marker: bool = True,
) -> str:
    """One target's plan as Markdown of at most ``max_chars`` characters."""
    out: list[str] = [marker("plan", plan.target)] if with_marker else []
    out += [f"{level} {escape(title)}", ""]
    where = _where(plan)
    if where:
        out += [where, ""]
    s = plan.summary
    out += [
        f"**{escape(text.summary_line(plan))}**",
        "",
        "| | assets |",
        "|---|---:|",
        f"| to change | {s.to_change} |",
        f"| unchanged | {s.unchanged} |",
        f"| errors | {s.errors} |",
        f"| blocked | {s.blocked} |",
    ]
    if s.violations:
        out.append(f"| refused by policy | {s.violations} |")
    out.append("")
    ignored = text.ignored_line(plan.assets)
    if ignored:
        out += [escape(ignored), ""]
    for warning in plan.warnings:
        out += [f"> [!WARNING]\n> {escape(warning)}", ""]
    footer = ci_footer(ci)
    listed = [a for a in plan.assets if a.action is not Action.NOOP]
    sections = [_details(asset) for asset in listed]
    # Every part ends with an empty line, and the document's last one is not written.
    room = max_chars - size(out) - size(footer) + 1
    kept, left = fit(sections, room)
    if left:
        kept, left = fit(sections, room - size(_left_out(listed, len(listed), max_chars)))
        shown = len(listed) - left
        out += kept + _left_out(listed[shown:], len(listed), max_chars)
    else:
        out += kept
    return _join(out + footer)


def _left_out(hidden: list[AssetPlan], listed: int, max_chars: int) -> list[str]:
    def count(action: Action) -> int:
        return sum(1 for a in hidden if a.action is action)

    parts = [
        f"{count(Action.UPDATE)} to change" if count(Action.UPDATE) else "",
        plural(count(Action.ERROR), "error") if count(Action.ERROR) else "",
        f"{count(Action.BLOCKED)} blocked" if count(Action.BLOCKED) else "",
    ]
    return [
        f"> [!NOTE]\n> {len(hidden)} of {listed} listed assets are not shown "
        f"({', '.join(p for p in parts if p)}): GitHub limits a comment to {max_chars:,} "
        "characters. `reconciler show PLANFILE` or `reconciler plan --format json` has the full "
        "plan.",
        "",
    ]


def ci_footer(ci: CiRun | None) -> list[str]:
    """``Commit `1a2b3c4d5e6f` · [CI run](...)`` when the CI environment names them."""
    if not ci:
        return []
    parts = []
    if ci.commit:
        short = f"`{ci.commit[:12]}`"
        parts.append(f"Commit [{short}]({ci.commit_url})" if ci.commit_url else f"Commit {short}")
    if ci.run_url:
        parts.append(f"[CI run]({ci.run_url})")
    return ["---", "", " · ".join(parts), ""]


def fit(blocks: list[list[str]], budget: int) -> tuple[list[str], int]:
    """The leading blocks whose lines fit in ``budget`` characters, and how many did not."""
    kept: list[str] = []
    used = 0
    for index, block in enumerate(blocks):
        cost = size(block)
        if used + cost > budget:
            return kept, len(blocks) - index
        kept += block
        used += cost
    return kept, 0


def size(lines: list[str]) -> int:
    """Characters of ``lines`` joined with newlines (one per line, the last included)."""
    return sum(len(line) + 1 for line in lines)


def _join(lines: list[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


def _details(asset: AssetPlan) -> list[str]:
    icon = _ACTION_ICON[asset.action]
    name = escape(asset.name) if asset.name else code(asset.asset_id)
    summary = f"{icon} <b>{name}</b> ({code(asset.asset_id)}): {_ACTION_LABEL[asset.action]}"
    fields = ", ".join(escape(c.dotted) for c in asset.changes)
    if fields:
        summary += f": {fields}"
    if asset.violations:
        rules = ", ".join(code(v.rule) for v in asset.violations)
        summary += f" — <b>refused by policy</b> {rules}"
    body = "\n".join(_diff_line(line) for line in text.render_asset(asset, color=False))
    return [
        "<details>",
        f"<summary>{summary}</summary>",
        "",
        *fence(body, "diff"),
        "",
        "</details>",
        "",
    ]


def _diff_line(line: str) -> str:
    """Move Terraform's change marker to column 0 so that a ``diff`` fence colours the line."""
    match = _MARKER.match(line)
    if not match:
        return line
    sign = "!" if match.group(2) == "~" else match.group(2)
    return f"{sign}{match.group(1)} {line[match.end() :]}".rstrip()


def fence(content: str, info: str = "") -> list[str]:
    """A code fence no line of ``content`` can close: it outruns every backtick run inside."""
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    ticks = "`" * max(3, longest + 1)
    return [f"{ticks}{info}", content, ticks]


def escape(value: str) -> str:
    """Text safe in Markdown paragraphs, table cells and HTML blocks: one line, no markup."""
    flat = clean_text(value)
    escaped = _ALWAYS.sub(lambda m: _NAMED.get(m.group(0)) or f"&#{ord(m.group(0))};", flat)
    escaped = _UNDERSCORE.sub("&#95;", escaped)
    return _AUTOLINK.sub(lambda m: f"&#{ord(m.group(0))};", escaped)


def code(value: str) -> str:
    """Inline code: ``<code>`` rather than backticks, so it also works inside ``<summary>``."""
    return f"<code>{escape(value)}</code>"


def _where(plan: Plan) -> str:
    parts = []
    if plan.target:
        parts.append(f"target {code(plan.target)}")
    if plan.project_id:
        parts.append(f"project {code(plan.project_id)}")
    if plan.created_at:
        parts.append(f"at {escape(plan.created_at)}")
    return "Planned for " + ", ".join(parts) + "." if parts else ""
