"""Text plans: Terraform's idiom, and user-controlled strings that cannot forge or hide lines."""

from __future__ import annotations

from plan_samples import sample_plan

from reconciler.engine.plan import Action, AssetPlan, ChangeKind, FieldChange, Plan, PlanSet
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


def _targets() -> PlanSet:
    staging = sample_plan()
    staging.target, staging.project_id = "staging", "p2"
    down = Plan(
        [], target="sg\x1b[2J", project_id="p3", error="cannot reach\nMetaStudio", unplanned=3
    )
    return PlanSet([sample_plan(), staging, down])


def test_several_targets_get_a_section_each_with_its_summary_and_a_total() -> None:
    out = text.render(_targets(), color=False)
    prod_at = out.index('Target "prod" (p1, https://metastudio.cn-north-4.myhuaweicloud.com):')
    staging_at = out.index('Target "staging" (p2, ')
    down_at = out.index('Target "sg\\u001b[2J" (p3):')
    assert prod_at < staging_at < down_at
    single = text.render(sample_plan(), color=False)
    assert out[prod_at:staging_at].count(text.summary_line(sample_plan())) == 1
    assert single.strip() in out[prod_at:staging_at]  # each section is that target's own plan
    assert (
        "Error: this target could not be planned (3 manifests not planned): "
        "cannot reach MetaStudio" in out[down_at:]
    )
    assert "\x1b" not in out
    assert out.rstrip().endswith(
        "Total: 2 to change, 2 unchanged, 2 errors, 2 blocked, across 3 targets "
        "(1 could not be planned)."
    )


def test_one_target_reads_as_a_single_plan() -> None:
    assert text.render(PlanSet.of(sample_plan())) == text.render(sample_plan())
    assert "Target" not in text.render(sample_plan())
