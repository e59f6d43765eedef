"""The drift report as GitHub-flavoured Markdown, written to be an issue body.

A summary table, then one collapsible section per asset that is not in sync with a table of
field / manifest / live, then the unmanaged assets.  Strings are escaped with the plan
renderer's :func:`reconciler.render.markdown.escape`.  GitHub rejects issue bodies over 65,536
characters, so the report stops listing details before ``max_chars`` and says how many it left
out (the JSON report always has everything).
"""

from __future__ import annotations

from reconciler.engine.drift import AssetDrift, DriftReport, DriftStatus, ProjectDrift
from reconciler.render.drift_text import coverage_line, summary_line
from reconciler.render.markdown import DEFAULT_MAX_CHARS, escape, size
from reconciler.render.text import quote

_ICON = {
    DriftStatus.DRIFTED: "~",
    DriftStatus.MISSING: "-",
    DriftStatus.BLOCKED: "!",
    DriftStatus.ERROR: "!",
    DriftStatus.IN_SYNC: "",
}


def render(
    report: DriftReport, title: str = "reconciler drift report", max_chars: int = DEFAULT_MAX_CHARS
) -> str:
    head = [f"## {escape(title)}", "", f"**{escape(summary_line(report))}**", ""]
    head += _summary_table(report)
    body: list[str] = []
    budget = max_chars - size(head) - 400  # room for the "left out" note
    left_out = 0
    for project in report.projects:
        section = _project(project, report)
        for block in section:
            if left_out or size(body) + size(block) > budget:
                left_out += 1
                continue
            body += block
    if left_out:
        body += [
            f"> [!NOTE]\n> {left_out} more section(s) left out to keep this under "
            f"{max_chars} characters; run `reconciler drift --format json` for the full report.",
            "",
        ]
    return "\n".join(head + body).rstrip("\n") + "\n"


def _summary_table(report: DriftReport) -> list[str]:
    rows = [
        ("drifted", report.count(DriftStatus.DRIFTED)),
        ("missing", report.count(DriftStatus.MISSING)),
        ("blocked", report.count(DriftStatus.BLOCKED)),
        ("errors", report.count(DriftStatus.ERROR)),
        ("in sync", report.count(DriftStatus.IN_SYNC)),
        ("not in any manifest", report.unmanaged),
    ]
    out = ["| | assets |", "|---|---:|"]
    out += [f"| {label} | {count} |" for label, count in rows]
    out += [f"| coverage | {escape(_coverage(report.managed, report.total))} |", ""]
    return out


def _coverage(managed: int, total: int) -> str:
    return f"{managed} of {total} ({100 * managed / total:.1f}%)" if total else "no assets"


def _project(project: ProjectDrift, report: DriftReport) -> list[list[str]]:
    """The project's blocks: a header, then one per asset, then the unmanaged list."""
    where = []
    if project.target:
        where.append(f"target {_code(project.target)}")
    if project.project_id:
        where.append(f"project {_code(project.project_id)}")
    header = [
        f"### {', '.join(where) or 'project'}",
        "",
        f"Checked at {escape(report.generated_at)}. "
        f"{escape(coverage_line(project.managed, project.total))}",
        "",
    ]
    blocks = [header]
    listed = [a for a in project.assets if a.status is not DriftStatus.IN_SYNC]
    if listed:
        table = ["| asset | id | status | fields |", "|---|---|---|---|"]
        for asset in listed:
            fields = ", ".join(escape(f.path) for f in asset.fields) or "—"
            table.append(
                f"| {escape(asset.name or '')} | {_code(asset.asset_id)} "
                f"| {asset.status.value} | {fields} |"
            )
        blocks.append([*table, ""])
        blocks += [_details(asset) for asset in listed]
    unchecked = [a for a in project.assets if a.unchecked]
    if unchecked:
        blocks.append(
            [
                "Write-only fields (`review_config`, `shared_config`) of "
                f"{len(unchecked)} asset(s) cannot be checked: the API never returns them.",
                "",
            ]
        )
    if project.unmanaged:
        if report.include_unmanaged:
            rows = ["| asset | id | type | state |", "|---|---|---|---|"]
            rows += [
                f"| {escape(u.name or '')} | {_code(u.asset_id)} | {escape(u.asset_type or '')} "
                f"| {escape(u.asset_state or '')} |"
                for u in project.unmanaged
            ]
            blocks.append(
                [
                    "<details>",
                    f"<summary>{len(project.unmanaged)} asset(s) not in any manifest</summary>",
                    "",
                    *rows,
                    "",
                    "</details>",
                    "",
                ]
            )
        else:
            blocks.append(
                [
                    f"{len(project.unmanaged)} asset(s) in the project are not in any manifest "
                    "(list them with `--include-unmanaged`).",
                    "",
                ]
            )
    return blocks


def _details(asset: AssetDrift) -> list[str]:
    name = escape(asset.name) if asset.name else _code(asset.asset_id)
    summary = f"{_ICON[asset.status]} <b>{name}</b> ({_code(asset.asset_id)}): {asset.status.value}"
    out = ["<details>", f"<summary>{summary}</summary>", ""]
    if asset.source:
        out += [f"Manifest: {_code(asset.source)}", ""]
    out += [f"- {escape(message)}" for message in asset.errors]
    if asset.errors:
        out.append("")
    if asset.fields:
        out += ["| field | manifest | live |", "|---|---|---|"]
        out += [
            f"| {_code(f.path)} | {_code(quote(f.manifest))} | {_code(quote(f.live))} |"
            for f in asset.fields
        ]
        out.append("")
    if asset.unchecked:
        names = ", ".join(_code(n) for n in asset.unchecked)
        out += [f"Not checked (write-only): {names}", ""]
    out += ["</details>", ""]
    return out


def _code(value: str) -> str:
    # <code> with escaped content: nothing inside can close it or the table cell.
    return f"<code>{escape(value)}</code>"


__all__ = ["DEFAULT_MAX_CHARS", "render"]
