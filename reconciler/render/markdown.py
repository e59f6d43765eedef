"""The plan as GitHub-flavoured Markdown, for pull-request comments and drift issues.

A heading, a summary table, a table of the listed assets, then one collapsible ``<details>``
section per changed, errored or blocked asset holding the text plan of that asset in a ``diff``
fence. Every user-controlled string (names, ids, values, messages) is escaped so that it can not
close the fence, the ``<details>`` tag or a table cell, nor render as Markdown or HTML.
GitHub rejects comments and issue bodies over 65,536 characters, so a large plan stops listing
assets before ``max_chars`` and says how many it left out (the JSON plan always has everything).
"""

from __future__ import annotations

import re

from reconciler.engine.plan import Action, AssetPlan, Plan
from reconciler.render import text

_ACTION_LABEL = {
    Action.UPDATE: "update in-place",
    Action.ERROR: "cannot be planned",
    Action.BLOCKED: "blocked",
    Action.NOOP: "in sync",
}
_ACTION_ICON = {Action.UPDATE: "~", Action.ERROR: "!", Action.BLOCKED: "!", Action.NOOP: ""}
# Characters that start Markdown syntax inline; shown as numeric entities so they stay literal
# in table cells, in <summary> and in running text alike.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_{}\[\]()#+!|~@$&<>\"']")
_ENTITY = {ch: f"&#{ord(ch)};" for ch in "\\`*_{}[]()#+!|~@$&<>\"'"}
# Bare URLs and www. names become links on GitHub; break them so names cannot plant links.
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(:)(?=//)|(?<=www)(\.)")
_MARKER = re.compile(r"^(\s*)([+~-]) ")
# GitHub's limit on a comment or issue body is 65,536 characters; stay clear of it.
DEFAULT_MAX_CHARS = 60_000
_NOTE_ROOM = 400  # kept free for the "left out" note


def render(plan: Plan, title: str = "reconciler plan", max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The whole plan as one Markdown document of at most about ``max_chars`` characters."""
    out: list[str] = [f"## {escape(title)}", ""]
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
        "",
    ]
    for warning in plan.warnings:
        out += [f"> [!WARNING]\n> {escape(warning)}", ""]
    listed = [a for a in plan.assets if a.action is not Action.NOOP]
    if not listed:
        return _join(out)
    budget = max_chars - size(out) - _NOTE_ROOM
    rows, rows_left = fit([[_row(asset)] for asset in listed], budget)
    table = ["| asset | id | action | fields |", "|---|---|---|---|", *rows, ""]
    sections, sections_left = fit([_details(asset) for asset in listed], budget - size(table))
    out += table + sections
    if rows_left or sections_left:
        out += [
            f"> [!NOTE]\n> {max(rows_left, sections_left)} of {len(listed)} listed assets left out "
            f"to keep this under {max_chars} characters; run `reconciler plan --format json` "
            "for the full plan.",
            "",
        ]
    return _join(out)


def fit(blocks: list[list[str]], budget: int) -> tuple[list[str], int]:
    """The leading blocks whose lines fit in ``budget`` characters, and how many did not."""
    kept: list[str] = []
    for index, block in enumerate(blocks):
        if size(kept) + size(block) > budget:
            return kept, len(blocks) - index
        kept += block
    return kept, 0


def size(lines: list[str]) -> int:
    """Characters of ``lines`` joined with newlines."""
    return sum(len(line) + 1 for line in lines)


def _join(lines: list[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


def _row(asset: AssetPlan) -> str:
    fields = ", ".join(escape(c.dotted) for c in asset.changes) or "—"
    return (
        f"| {escape(asset.name or '')} | {_code(asset.asset_id)} "
        f"| {_ACTION_LABEL[asset.action]} | {fields} |"
    )


def _details(asset: AssetPlan) -> list[str]:
    icon = _ACTION_ICON[asset.action]
    name = escape(asset.name) if asset.name else _code(asset.asset_id)
    summary = f"{icon} <b>{name}</b> ({_code(asset.asset_id)}): {_ACTION_LABEL[asset.action]}"
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
    marker = "!" if match.group(2) == "~" else match.group(2)
    return f"{marker}{match.group(1)} {line[match.end() :]}".rstrip()


def fence(content: str, info: str = "") -> list[str]:
    """A code fence no line of ``content`` can close: it outruns every backtick run inside."""
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    ticks = "`" * max(3, longest + 1)
    return [f"{ticks}{info}", content, ticks]


def escape(value: str) -> str:
    """Text safe in Markdown paragraphs, table cells and HTML: no tags, no syntax, one line."""
    flat = text.clean_text(value)
    escaped = _MARKDOWN_SPECIAL.sub(lambda m: _ENTITY[m.group(0)], flat)
    return _AUTOLINK.sub(lambda m: f"&#{ord(m.group(0))};", escaped)


def _code(value: str) -> str:
    # <code> rather than backticks: entities inside stay literal and nothing can close it early.
    return f"<code>{escape(value)}</code>"


def _where(plan: Plan) -> str:
    parts = []
    if plan.target:
        parts.append(f"target {_code(plan.target)}")
    if plan.project_id:
        parts.append(f"project {_code(plan.project_id)}")
    if plan.created_at:
        parts.append(f"at {escape(plan.created_at)}")
    return "Planned for " + ", ".join(parts) + "." if parts else ""
