"""The drift report as text for a terminal or a log: per asset, field, manifest value, live value.

Values are shown the way the plan shows them (:func:`reconciler.render.text.quote`), so the two
read alike; the wording is "manifest / live" because drift is about what changed outside git.
"""

from __future__ import annotations

from reconciler.engine.drift import AssetDrift, DriftReport, DriftStatus, ProjectDrift
from reconciler.escape import clean_text, shown_pair
from reconciler.render.text import bold, marked, quote, target_failure
from reconciler.render.words import plural

_HEADLINE = {
    DriftStatus.DRIFTED: "has drifted from its manifest",
    DriftStatus.MISSING: "is missing from the project",
    DriftStatus.BLOCKED: "is blocked: its state does not allow updates",
    DriftStatus.ERROR: "could not be checked",
    DriftStatus.IN_SYNC: "is in sync apart from fields that cannot be checked",
}


def render(report: DriftReport, color: bool = False) -> str:
    out: list[str] = []
    for project in report.projects:
        out += _project(project, report, color)
    out.append(summary_line(report))
    return "\n".join(out) + "\n"


def summary_line(report: DriftReport) -> str:
    if not report.has_drift and not report.count(DriftStatus.ERROR):
        head = "No drift. Live assets match the manifests."
        if report.failed:
            head = f"Drift unknown for {len(report.failed)} target(s) that could not be checked."
    else:
        head = (
            f"Drift: {report.count(DriftStatus.DRIFTED)} drifted, "
            f"{report.count(DriftStatus.MISSING)} missing, "
            f"{report.count(DriftStatus.BLOCKED)} blocked, "
            f"{report.count(DriftStatus.IN_SYNC)} in sync, "
            f"{plural(report.count(DriftStatus.ERROR), 'error')}."
        )
    return f"{head} {coverage_line(report.managed, report.total)}"


def coverage_line(managed: int, total: int) -> str:
    if not total:
        return "Coverage: the project has no assets."
    return (
        f"Coverage: {managed} of {plural(total, 'asset')} managed ({100 * managed / total:.1f}%)."
    )


def where(project: ProjectDrift, generated_at: str) -> str:
    parts = [f'target "{clean_text(project.target)}"'] if project.target else []
    if project.project_id:
        parts.append(f"project {clean_text(project.project_id)}")
    return f"Drift report for {', '.join(parts) or 'the project'}, at {generated_at}."


def project_error(project: ProjectDrift) -> str:
    """What a target that could not be read says instead of its assets."""
    return target_failure("checked", project.unchecked_manifests, project.error)


def project_summary(project: ProjectDrift) -> str:
    """One target's counts: drifted, missing, unmanaged and coverage."""
    if project.error is not None:
        return f"{_target(project)}: could not be checked."
    return (
        f"{_target(project)}: {project.count(DriftStatus.DRIFTED)} drifted, "
        f"{project.count(DriftStatus.MISSING)} missing, "
        f"{project.count(DriftStatus.BLOCKED)} blocked, "
        f"{project.count(DriftStatus.ERROR)} error(s), {len(project.unmanaged)} unmanaged. "
        f"{coverage_line(project.managed, project.total)}"
    )


def _target(project: ProjectDrift) -> str:
    return f'Target "{clean_text(project.target or "default")}"'


def _project(project: ProjectDrift, report: DriftReport, color: bool) -> list[str]:
    out = [bold(where(project, report.generated_at), color), ""]
    if project.error is not None:
        return [*out, project_error(project), ""]
    for asset in project.assets:
        if asset.status is not DriftStatus.IN_SYNC or asset.unchecked:
            out += asset_lines(asset, color)
            out.append("")
    if project.unmanaged:
        count = len(project.unmanaged)
        verb = "is" if count == 1 else "are"
        line = f"Unmanaged: {plural(count, 'asset')} in the project {verb} in no manifest"
        if report.include_unmanaged:
            out.append(line + ":")
            out += [
                f"  ? {_label(u.name, u.asset_id)} {clean_text(u.asset_type or '')} "
                f"{clean_text(u.asset_state or '')}".rstrip()
                for u in project.unmanaged
            ]
        else:
            out.append(line + " (list them with --include-unmanaged).")
        out.append("")
    if len(report.projects) > 1:
        out += [project_summary(project), ""]
    return out


def asset_lines(asset: AssetDrift, color: bool = False) -> list[str]:
    """One asset: a header, then per drifted field its manifest and live value."""
    header = f"# asset {_label(asset.name, asset.asset_id)} {_HEADLINE[asset.status]}"
    if asset.source:
        header += f"  ({clean_text(asset.source)})"
    out = [bold(header, color)]
    if asset.history:
        out.append(f"    {since_text(asset)}")
    out += [f"    {clean_text(message)}" for message in asset.errors]
    for drift in asset.fields:
        manifest, live, note = shown_pair(drift.manifest, drift.live, quote)
        path = clean_text(drift.path) + (f" ({note})" if note else "")
        out += [
            marked(2, "~", path, color),
            f"      manifest: {manifest}",
            f"      live:     {live}",
        ]
    for name in asset.unchecked:
        out.append(
            f"    {clean_text(name)}: write-only, cannot be checked (the API never returns it)"
        )
    return out


def since_text(asset: AssetDrift) -> str:
    """``drifted since 2026-12-01T06:00:00Z (12 checks)``, from the asset's drift history."""
    episode = asset.history
    if episode is None:
        return ""
    word = {DriftStatus.MISSING: "missing", DriftStatus.BLOCKED: "blocked"}.get(
        asset.status, "drifted"
    )
    checks = "check" if episode.cycles == 1 else "checks"
    return f"{word} since {clean_text(episode.first_seen)} ({episode.cycles} {checks})"


def _label(name: str | None, asset_id: str) -> str:
    if name:
        return f"{quote(name)} ({clean_text(asset_id)})"
    return f"({clean_text(asset_id)})"
