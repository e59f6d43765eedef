"""Markdown plans survive hostile asset names and values without breaking their structure."""

from __future__ import annotations

import re

from plan_samples import sample_plan

from reconciler.engine.plan import Action, AssetPlan, ChangeKind, FieldChange, Plan
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
    # Every table row keeps four cells.
    rows = [line for line in outside.splitlines() if line.startswith("| ") and "id" in line]
    assert rows
    for row in rows:
        assert row.count("|") == 5, row


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
    assert out.startswith("## reconciler plan\n")
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


def test_a_large_plan_stays_under_the_comment_limit_and_says_what_it_left_out() -> None:
    plan = _big_plan(2000)
    doc = markdown.render(plan)
    assert len(doc) <= markdown.DEFAULT_MAX_CHARS
    assert "Plan: 2000 to change" in doc  # the summary is always there
    note = re.search(r"(\d+) of 2000 listed assets left out", doc)
    assert note is not None and int(note.group(1)) > 0
    assert "reconciler plan --format json" in doc
    assert doc.count("<details>") == doc.count("</details>")  # no section cut in half
    assert doc.count("<details>") + int(note.group(1)) <= 2000


def test_a_small_plan_is_not_cut() -> None:
    doc = markdown.render(_big_plan(3))
    assert "left out" not in doc
    assert doc.count("<details>") == 3
