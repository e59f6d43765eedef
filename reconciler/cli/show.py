"""``reconciler show PLANFILE``: a saved plan, rendered as text, Markdown or JSON.

Like ``terraform show``: review what ``reconciler apply PLANFILE`` would send, or turn a plan
saved in one CI job into the pull-request comment of another, without reading live state again.
The file is checked as apply checks it (kind, format version, checksum) before it is shown.
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.cli.options import format_option, render_options
from reconciler.escape import clean_text
from reconciler.render.registry import render
from reconciler.run import read_plan


@click.command()
@click.argument("plan_file", metavar="PLANFILE", type=click.Path(dir_okay=False, path_type=Path))
@format_option("Output format on stdout.")
@pass_options
def show(options: GlobalOptions, plan_file: Path, fmt: str) -> None:
    """Print a saved plan file.

    \b
    Examples:
      reconciler plan --out plan.json && reconciler show plan.json
      reconciler show plan.json --format markdown > comment.md
    """
    saved = read_plan(plan_file)
    if fmt == "text":
        plan = saved.plan
        made = f"at {plan.created_at}" if plan.created_at else "at an unknown time"
        where = "; ".join(
            f"target {one.target}, project {one.project_id}, endpoint {one.endpoint}"
            for one in plan.plans
        )
        about = (
            f"Saved plan {plan_file} (reconciler {saved.reconciler_version}), made {made} for "
            f"{where}."
        )
        click.echo(clean_text(about) + "\n", err=True)
    click.echo(render("plan", fmt, saved.plan, render_options(options)), nl=False)
