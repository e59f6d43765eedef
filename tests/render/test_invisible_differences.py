"""Changes whose two sides would print alike are marked and shown escaped in every human format;
the JSON plan keeps the exact strings."""

from __future__ import annotations

import json

import pytest

from reconciler.engine.drift import AssetDrift, DriftReport, DriftStatus, FieldDrift, ProjectDrift
from reconciler.engine.plan import Action, AssetPlan, ChangeKind, FieldChange, Plan
from reconciler.render import drift_markdown, drift_text, markdown, text

NFC = "Caf\u00e9"
NFD = "Cafe\u0301"


def _plan(before: object, after: object, path: tuple[str, ...] = ("asset_name",)) -> Plan:
    change = FieldChange(path, ChangeKind.UPDATE, before, after)
    asset = AssetPlan(
        asset_id="a1", action=Action.UPDATE, name="Sara", changes=[change], body={path[0]: after}
    )
    return Plan(assets=[asset])


def _drift(manifest: object, live: object) -> DriftReport:
    asset = AssetDrift(
        asset_id="a1",
        status=DriftStatus.DRIFTED,
        name="Sara",
        fields=[FieldDrift("asset_name", manifest, live)],
    )
    project = ProjectDrift("prod", "p1", None, [asset], [], total=1, managed=1)
    return DriftReport([project], generated_at="2026-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("live", "manifest", "shown", "note"),
    [
        (NFD, NFC, '"Cafe\\u0301" -> "Caf\\u00e9"', "differs only in Unicode normalisation"),
        ("Sara\u200b", "Sara", '"Sara\\u200b" -> "Sara"', "differs in invisible characters"),
        (
            "Sara\u00a0Lee",
            "Sara Lee",
            '"Sara\\u00a0Lee" -> "Sara Lee"',
            "differs in invisible characters",
        ),
        ("Sara ", "Sara", '"Sara\\u0020" -> "Sara"', "differs only in trailing whitespace"),
    ],
)
def test_text_plan_marks_a_change_that_would_print_alike(
    live: str, manifest: str, shown: str, note: str
) -> None:
    out = text.render(_plan(live, manifest), color=False)
    line = next(line for line in out.splitlines() if "~ asset_name" in line)
    assert line.strip() == f"~ asset_name = {shown} ({note})"


def test_a_visible_change_reads_as_before() -> None:
    out = text.render(_plan("Sara", "Sarah"), color=False)
    assert '~ asset_name = "Sara" -> "Sarah"\n' in out
    assert "differs" not in out


def test_a_nested_field_and_a_list_are_marked_too() -> None:
    nested = FieldChange(
        ("asset_extra_meta",),
        ChangeKind.UPDATE,
        {"tag": NFD, "n": 1},
        {"tag": NFC, "n": 1},
    )
    listed = FieldChange(("tags",), ChangeKind.UPDATE, [NFD, "x"], [NFC, "x"])
    asset = AssetPlan(asset_id="a1", action=Action.UPDATE, changes=[nested, listed], body={})
    out = text.render(Plan(assets=[asset]), color=False)
    assert '~ tag = "Cafe\\u0301" -> "Caf\\u00e9" (differs only in Unicode normalisation)' in out
    assert (
        '~ tags             = ["Cafe\\u0301", "x"] -> ["Caf\\u00e9", "x"] '
        "(differs only in Unicode normalisation)" in out
    )


def test_markdown_plan_carries_the_same_marking() -> None:
    out = markdown.render(_plan(NFD, NFC))
    assert (
        '!       asset_name = "Cafe\\u0301" -> "Caf\\u00e9" (differs only in Unicode normalisation)'
        in out
    )


def test_json_plan_keeps_the_exact_strings() -> None:
    data = _plan(NFD, NFC).to_json()
    change = data["assets"][0]["changes"][0]
    assert (change["before"], change["after"]) == (NFD, NFC)
    assert NFD in json.dumps(data, ensure_ascii=False)


def test_drift_text_marks_and_escapes_both_sides() -> None:
    out = drift_text.render(_drift(NFC, NFD))
    assert "  ~ asset_name (differs only in Unicode normalisation)\n" in out
    assert '      manifest: "Caf\\u00e9"\n      live:     "Cafe\\u0301"\n' in out


def test_drift_markdown_marks_and_escapes_both_sides() -> None:
    out = drift_markdown.render(_drift("Sara", "Sara\u200d"))
    assert (
        "| <code>asset_name</code> (differs in invisible characters) "
        "| <code>&quot;Sara&quot;</code> | <code>&quot;Sara&#92;u200d&quot;</code> |" in out
    )


def test_drift_of_visibly_different_values_is_unchanged() -> None:
    out = drift_text.render(_drift("Sara", "Sarah"))
    assert '      manifest: "Sara"\n      live:     "Sarah"\n' in out
    assert "differs" not in out
