"""Text plans: Terraform's idiom, and user-controlled strings that cannot forge or hide lines."""

from __future__ import annotations

from plan_samples import sample_plan

from reconciler.engine.plan import Action, AssetPlan, ChangeKind, FieldChange, Plan
from reconciler.render import text


def _one(asset: AssetPlan) -> str:
    return text.render(Plan(assets=[asset]), color=False)


def test_hostile_name_cannot_inject_lines_or_escapes() -> None:
    name = 'Evil\n  # asset "x" will be updated in-place\x1b[2J\u202egnp.exe'
    out = _one(
        AssetPlan(
            asset_id="a1",
            action=Action.UPDATE,
            name=name,
            changes=[FieldChange(("asset_description",), ChangeKind.UPDATE, "a\nb", "\x1b[31m")],
            body={"asset_description": "\x1b[31m"},
        )
    )
    assert "\x1b" not in out and "\u202e" not in out
    # The forged header stayed inside the quoted name: one header line only.
    assert [line for line in out.splitlines() if line.startswith("  # asset")] == [
        '  # asset "Evil\\n  # asset \\"x\\" will be updated in-place\\u001b[2J\\u202egnp.exe" '
        "(a1) will be updated in-place"
    ]
    assert '\\n  # asset \\"x\\"' in out
    assert '~ asset_description = "a\\nb" -> "\\u001b[31m"' in out


def test_error_message_is_one_line() -> None:
    out = _one(AssetPlan(asset_id="a1", action=Action.ERROR, errors=["bad\nPlan: 0 to change"]))
    assert "# asset (a1) cannot be planned: bad Plan: 0 to change" in out
    assert out.rstrip().endswith("Plan: 0 to change, 0 unchanged, 1 error.")


def test_summary_counts_and_plurals() -> None:
    plan = sample_plan()
    assert text.summary_line(plan) == "Plan: 1 to change, 1 unchanged, 1 error, 1 blocked."
    plan.assets.append(AssetPlan(asset_id="x", action=Action.ERROR, errors=["e"]))
    assert text.summary_line(plan) == "Plan: 1 to change, 1 unchanged, 2 errors, 1 blocked."
    only_blocked = Plan(assets=[AssetPlan(asset_id="b", action=Action.BLOCKED)])
    assert text.summary_line(only_blocked) == "Plan: 0 to change, 0 unchanged, 1 blocked."


def test_write_only_never_shown_in_sync() -> None:
    out = text.render(sample_plan(), color=False)
    assert "~ shared_config     = (write-only, will be sent)" in out
    assert "# write-only: review_config, cannot be read back" in out
    # The in-sync asset with a write-only field is not listed, but the note says it is not re-sent.
    assert "1 unlisted asset manages write-only fields (review_config)" in out


def test_nested_change_without_children_is_derived() -> None:
    out = _one(
        AssetPlan(
            asset_id="a1",
            action=Action.UPDATE,
            changes=[
                FieldChange(
                    ("asset_extra_meta", "voice_model_meta"),
                    ChangeKind.UPDATE,
                    before={"speed_ratio": 1.0, "sex": "FEMALE"},
                    after={"speed_ratio": 1.2, "sex": "FEMALE", "age": "youth"},
                )
            ],
            body={},
        )
    )
    assert "~ speed_ratio = 1.0 -> 1.2" in out
    assert '+ age         = "youth"' in out
    assert "# (1 unchanged attribute hidden)" in out


def test_new_block_is_marked_added() -> None:
    out = _one(
        AssetPlan(
            asset_id="a1",
            action=Action.UPDATE,
            changes=[
                FieldChange(
                    ("asset_extra_meta", "ppt_meta"),
                    ChangeKind.ADD,
                    before=None,
                    after={"auto_analysis": True},
                    children=(
                        FieldChange(
                            ("asset_extra_meta", "ppt_meta", "auto_analysis"),
                            ChangeKind.ADD,
                            after=True,
                        ),
                    ),
                )
            ],
            body={},
        )
    )
    assert "+ ppt_meta = {" in out
    assert "+ auto_analysis = true" in out
