"""One entry point for every report in every format: the pairs the commands rely on exist."""

from __future__ import annotations

import json

import pytest
from plan_samples import sample_plan

from reconciler.engine.drift import DriftReport
from reconciler.render.registry import FORMATS, RENDERERS, RenderOptions, render


def test_every_report_has_every_format() -> None:
    assert {(report, fmt) for report in ("plan", "drift") for fmt in FORMATS} <= set(RENDERERS)


def test_colour_reaches_the_text_renderer_only() -> None:
    plan = sample_plan()
    assert "\x1b[" in render("plan", "text", plan, RenderOptions(color=True))
    assert "\x1b[" not in render("plan", "text", plan, RenderOptions(color=False))
    assert "\x1b[" not in render("plan", "json", plan, RenderOptions(color=True))
    assert json.loads(render("plan", "json", plan))["format_version"]


def test_drift_renders_through_the_same_door() -> None:
    report = DriftReport([])
    assert json.loads(render("drift", "json", report))["format_version"]
    assert "## reconciler drift report" in render("drift", "markdown", report)


def test_an_unknown_pair_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no yaml renderer for the plan report"):
        render("plan", "yaml", sample_plan())
