"""The drift report as GitHub-flavoured Markdown, written to be an issue body.

The hidden marker ``<!-- reconciler:drift target=NAME -->``, a summary table, then one collapsible
section per asset that is not in sync with a table of field / manifest / live, then the
unmanaged assets, and the commit and CI run when known.  Strings are escaped with the plan
renderer's :func:`reconciler.render.markdown.escape`.  GitHub rejects issue bodies over 65,536
characters, so the report stops listing sections before ``max_chars`` and says exactly how many
it left out (the JSON report always has everything).
"""

from __future__ import annotations

from reconciler.ci import CiRun
from reconciler.engine.drift import AssetDrift, DriftReport, DriftStatus, ProjectDrift
from reconciler.escape import shown_pair
from reconciler.render.drift_text import coverage_line, project_error, since_text, summary_line
from reconciler.render.markdown import DEFAULT_MAX_CHARS, ci_footer, code, escape, marker, size
from reconciler.render.text import quote
from reconciler.render.words import plural

_ICON = {
    DriftStatus.DRIFTED: "~",
    DriftStatus.MISSING: "-",
    DriftStatus.BLOCKED: "!",
    DriftStatus.ERROR: "!",
    DriftStatus.IN_SYNC: "",
}


def render(
    report: DriftReport,
    title: str = "reconciler drift report",
    max_chars: int = DEFAULT_MAX_CHARS,
    ci: CiRun | None = None,
) -> str:
    targets = ",".join(p.target or "default" for p in report.projects) or None
    head = [marker("drift", targets), f"## {escape(title)}", ""]
    head += [f"**{escape(summary_line(report))}**", ""]
    head += _summary_table(report)
    footer = ci_footer(ci)
    blocks = [block for project in report.projects for block in _project(project, report)]
    listed = sum(1 for _, is_asset in blocks if is_asset)
    # Every part ends with an empty line, and the document's last one is not written.
    room = max_chars - size(head) - size(footer) + 1
    if sum(size(lines) for lines, _ in blocks) > room:
        room -= size(_left_out(listed, listed, max_chars))
    body: list[str] = []
    hidden = 0
    for index, (lines, _) in enumerate(blocks):
        if size(body) + size(lines) > room:
            hidden = sum(1 for _, is_asset in blocks[index:] if is_asset)
            body += _left_out(hidden, listed, max_chars)
            break
        body += lines
    return "\n".join(head + body + footer).rstrip("\n") + "\n"


def _left_out(hidden: int, listed: int, max_chars: int) -> list[str]:
    return [
        f"> [!NOTE]\n> {hidden} of {plural(listed, 'asset')} not in sync "
        f"{'is' if hidden == 1 else 'are'} not shown: GitHub limits an issue body to "
        f"{max_chars:,} characters. `reconciler drift --format json` has the full report.",
        "",
    ]


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
    if len(report.projects) > 1:
        out += [
            "| target | project | drifted | missing | unmanaged | coverage |",
            "|---|---|---:|---:|---:|---|",
        ]
        for p in report.projects:
            if p.error is not None:
                cells = "could not be checked | | |"
            else:
                cells = (
                    f"{p.count(DriftStatus.DRIFTED)} | {p.count(DriftStatus.MISSING)} "
                    f"| {len(p.unmanaged)} | {escape(_coverage(p.managed, p.total))}"
                )
            out.append(f"| {code(p.target or 'default')} | {code(p.project_id or '')} | {cells} |")
        out.append("")
    return out


def _coverage(managed: int, total: int) -> str:
    return f"{managed} of {total} ({100 * managed / total:.1f}%)" if total else "no assets"


def _project(project: ProjectDrift, report: DriftReport) -> list[tuple[list[str], bool]]:
    """The project's blocks, each flagged when it is one asset's section: a header, one section
    per asset not in sync, then the write-only note and the unmanaged assets."""
    where = []
    if project.target:
        where.append(f"target {code(project.target)}")
    if project.project_id:
        where.append(f"project {code(project.project_id)}")
    header = [
        f"### {', '.join(where) or 'project'}",
        "",
        f"Checked at {escape(report.generated_at)}. "
        f"{escape(coverage_line(project.managed, project.total))}",
        "",
    ]
    if project.error is not None:
        return [([*header[:2], f"> [!CAUTION]\n> {escape(project_error(project))}", ""], False)]
    blocks = [(header, False)]
    blocks += [
        (_details(asset), True)
        for asset in project.assets
        if asset.status is not DriftStatus.IN_SYNC
    ]
    unchecked = [a for a in project.assets if a.unchecked]
    if unchecked:
        note = (
            "Write-only fields (`review_config`, `shared_config`) of "
            f"{plural(len(unchecked), 'asset')} cannot be checked: the API never returns them."
        )
        blocks.append(([note, ""], False))
    count = len(project.unmanaged)
    if count and report.include_unmanaged:
        rows = ["| asset | id | type | state |", "|---|---|---|---|"]
        rows += [
            f"| {escape(u.name or '')} | {code(u.asset_id)} | {escape(u.asset_type or '')} "
            f"| {escape(u.asset_state or '')} |"
            for u in project.unmanaged
        ]
        summary = f"<summary>{plural(count, 'asset')} not in any manifest</summary>"
        blocks.append((["<details>", summary, "", *rows, "", "</details>", ""], False))
    elif count:
        line = (
            f"{plural(count, 'asset')} in the project {'is' if count == 1 else 'are'} not in any "
            "manifest (list them with `--include-unmanaged`)."
        )
        blocks.append(([line, ""], False))
    return blocks


def _details(asset: AssetDrift) -> list[str]:
    name = escape(asset.name) if asset.name else code(asset.asset_id)
    status = escape(since_text(asset)) if asset.history else asset.status.value
    summary = f"{_ICON[asset.status]} <b>{name}</b> ({code(asset.asset_id)}): {status}"
    fields = ", ".join(escape(f.path) for f in asset.fields)
    if fields:
        summary += f": {fields}"
    out = ["<details>", f"<summary>{summary}</summary>", ""]
    if asset.source:
        out += [f"Manifest: {code(asset.source)}", ""]
    if asset.history:
        since = escape(since_text(asset))
        out += [f"{since[:1].upper()}{since[1:]}.", ""]
    out += [f"- {escape(message)}" for message in asset.errors]
    if asset.errors:
        out.append("")
    if asset.fields:
        out += ["| field | manifest | live |", "|---|---|---|"]
        out += [_field_row(f.path, f.manifest, f.live) for f in asset.fields]
        out.append("")
    if asset.unchecked:
        names = ", ".join(code(n) for n in asset.unchecked)
        out += [f"Not checked (write-only): {names}", ""]
    out += ["</details>", ""]
    return out


def _field_row(path: str, manifest: object, live: object) -> str:
    """``| field | manifest | live |``; values that would print alike are escaped, with a note."""
    shown_manifest, shown_live, note = shown_pair(manifest, live, quote)
    field = code(path) + (f" ({escape(note)})" if note else "")
    return f"| {field} | {code(shown_manifest)} | {code(shown_live)} |"


__all__ = ["DEFAULT_MAX_CHARS", "render"]
