"""Markdown plans survive hostile asset names and values without breaking their structure."""

from __future__ import annotations

import re

from plan_samples import sample_plan

from reconciler.ci import CiRun, ci_run
from reconciler.engine.plan import Action, AssetPlan, ChangeKind, FieldChange, Plan, PlanSet
from reconciler.render import markdown

HOSTILE = (
    "x | y `z` ```\n</details></summary><img src=x onerror=alert(1)> *b* @team https://evil.example"
)


def _hostile_plan() -> Plan:
    return Plan(
        assets=[
            AssetPlan(
                asset_id="id|1",
                action=Action.UPDATE,
                name=HOSTILE,
                changes=[
                    FieldChange(
                        ("asset_description",),
                        ChangeKind.UPDATE,
                        before="````\n</details>",
                        after=HOSTILE,
                    )
                ],
                body={"asset_description": HOSTILE},
            ),
            AssetPlan(
                asset_id="id-2",
                action=Action.ERROR,
                name="<script>",
                errors=["boom\n</details>\n# injected heading"],
            ),
        ]
    )


def test_hostile_text_cannot_break_out() -> None:
    out = markdown.render(_hostile_plan())
    # Outside code fences, no raw tag or markdown syntax from the name survives.
    outside = re.sub(r"(`{3,})diff\n.*?\n\1\n", "", out, flags=re.S)
    assert "<img" not in outside and "<script>" not in outside
    assert "x | y" not in outside
    assert "`z`" not in outside
    assert "@team" not in outside and "https://evil" not in outside
    # Exactly one <details> open and close per listed asset: nothing closed one early.
    assert outside.count("<details>") == 2
    assert outside.count("</details>") == 2
    assert outside.count("</summary>") == 2
    # A pipe in a name or id cannot open a table cell.
    assert "|" not in "".join(line for line in outside.splitlines() if "<summary>" in line)


def test_fence_outruns_backticks_in_values() -> None:
    out = markdown.render(_hostile_plan())
    opening = re.search(r"^(`{3,})diff$", out, flags=re.M)
    assert opening is not None
    ticks = opening.group(1)
    assert len(ticks) >= 5  # the description holds a run of four backticks
    block = out[opening.end() :].split("\n" + ticks + "\n", 1)[0]
    assert HOSTILE.splitlines()[0][:5] in block or '"x | y' in block
    # No line inside the block could close the fence.
    assert not any(line.strip().startswith(ticks) for line in block.splitlines())


def test_error_message_stays_on_its_line() -> None:
    out = markdown.render(_hostile_plan())
    assert "\n# injected heading" not in out


def test_summary_table_and_sections() -> None:
    out = markdown.render(sample_plan())
    assert out.startswith("<!-- reconciler:plan target=prod -->\n## reconciler plan\n")
    assert "| to change | 1 |" in out
    assert "| errors | 1 |" in out
    assert out.count("<details>") == 3  # update, error, blocked; the in-sync asset is not listed
    assert "Narrator" not in out
    assert "> [!WARNING]" in out
    # Markers move to column 0 (so a diff fence colours them); names keep their column.
    assert '\n+       asset_description = "Virtual employee"\n' in out
    assert '\n!       asset_name        = "Sara" -> "Sara Model"\n' in out
    assert '\n-           "OLD",\n' in out


def _big_plan(n: int) -> Plan:
    return Plan(
        assets=[
            AssetPlan(
                asset_id=f"00000000-0000-4000-8000-{i:012d}",
                action=Action.UPDATE,
                name=f"Asset number {i}",
                changes=[
                    FieldChange(
                        ("asset_description",), ChangeKind.UPDATE, before="old " * 20, after="new"
                    )
                ],
                body={"asset_description": "new"},
            )
            for i in range(n)
        ]
    )


def test_a_large_plan_fills_the_comment_limit_and_counts_what_it_left_out() -> None:
    plan = _big_plan(2000)
    plan.assets[-1].action = Action.ERROR
    plan.assets[-1].errors = ["boom"]
    doc = markdown.render(plan, ci=CiRun("a" * 40, None, "https://ci.example/run/1"))
    assert len(doc) <= markdown.GITHUB_LIMIT == 65_536
    assert len(doc) > markdown.GITHUB_LIMIT - 1_000  # filled, not cut early
    assert doc.startswith("<!-- reconciler:plan target=default -->\n")
    assert "Plan: 2000 to change" in doc.replace("1999", "2000")  # the summary is always there
    shown = doc.count("<details>")
    assert doc.count("</details>") == shown  # no section cut in half
    note = re.search(r"(\d+) of 2000 listed assets are not shown \((\d+) to change, 1 error\)", doc)
    assert note is not None
    assert int(note.group(1)) == 2000 - shown  # exactly the ones not shown
    assert int(note.group(2)) == 2000 - shown - 1
    assert "65,536 characters" in doc
    assert doc.rstrip().endswith("[CI run](https://ci.example/run/1)")  # the footer survives


def test_a_small_plan_is_not_cut() -> None:
    doc = markdown.render(_big_plan(3))
    assert "not shown" not in doc
    assert doc.count("<details>") == 3


def test_a_plan_that_just_fits_has_no_note() -> None:
    whole = markdown.render(_big_plan(5))
    assert "not shown" not in markdown.render(_big_plan(5), max_chars=len(whole))
    cut = markdown.render(_big_plan(5), max_chars=len(whole) - 1)
    assert len(cut) <= len(whole) - 1
    note = re.search(r"(\d) of 5 listed assets are not shown", cut)
    assert note is not None and int(note.group(1)) == 5 - cut.count("<details>") > 0


def test_only_what_github_reads_as_markup_is_escaped() -> None:
    plan = sample_plan()
    plan.warnings = ["asset_name of Sara (33%) is _new_ *now* ~x~ [link](y) $x$ #1"]
    out = markdown.render(plan)
    assert "&#95;name" not in out and "asset_name" in out  # snake_case reads as it is
    assert "Sara (33%)" in out and "#1" in out
    assert "&#95;new&#95;" in out and "&#42;now&#42;" in out and "&#126;x&#126;" in out
    assert "&#91;link&#93;(y)" in out and "&#36;x&#36;" in out


def test_the_marker_is_safe_for_any_target_name() -> None:
    assert markdown.marker("plan", "prod") == "<!-- reconciler:plan target=prod -->"
    assert markdown.marker("plan", "a --> b") == "<!-- reconciler:plan target=a%20--%3E%20b -->"


def test_ci_footer_links_commit_and_run() -> None:
    run = ci_run(
        {
            "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/assets",
            "GITHUB_RUN_ID": "42",
        }
    )
    out = markdown.render(sample_plan(), ci=run)
    assert out.rstrip().endswith(
        "Commit [`0123456789ab`](https://github.com/acme/assets/commit/"
        "0123456789abcdef0123456789abcdef01234567) · "
        "[CI run](https://github.com/acme/assets/actions/runs/42)"
    )
    gitlab = ci_run({"CI_COMMIT_SHA": "abcdef1234567", "CI_JOB_URL": "https://gitlab.example/j/7"})
    assert gitlab == CiRun("abcdef1234567", None, "https://gitlab.example/j/7")
    assert ci_run({"GITHUB_SHA": "not hex!", "GITHUB_RUN_ID": "1) [x](evil"}) == CiRun()
    assert "Commit" not in markdown.render(sample_plan(), ci=ci_run({}))


def test_several_targets_get_a_table_and_a_section_each() -> None:
    staging = sample_plan()
    staging.target, staging.project_id = "staging", "p2"
    down = Plan([], target="sg", project_id="p3", error="cannot reach <MetaStudio>", unplanned=1)
    doc = markdown.render(PlanSet([sample_plan(), staging, down]))
    assert doc.startswith("<!-- reconciler:plan target=prod,staging,sg -->\n## reconciler plan\n")
    assert doc.count("<!-- reconciler:plan") == 1
    assert "**Total: 2 to change, 2 unchanged, 2 errors, 2 blocked, across 3 targets" in doc
    assert "| <code>prod</code> | <code>p1</code> | 1 | 1 | 1 | 1 |" in doc
    assert "| <code>sg</code> | <code>p3</code> | 0 | 0 | could not be planned | 0 |" in doc
    assert doc.index("### target prod") < doc.index("### target staging")
    assert doc.index("### target staging") < doc.index("### target sg")
    assert "cannot reach &lt;MetaStudio&gt;" in doc and "<MetaStudio>" not in doc
    assert doc.count("<details>") == 2 * markdown.render(sample_plan()).count("<details>")
    assert len(markdown.render(PlanSet([_big_plan(3000), _big_plan(3000)]))) < 65_536
