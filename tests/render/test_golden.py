"""Golden-file tests: rendered plans are reviewed as text, so any change in output shows in a diff.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/render/test_golden.py``
(refused under CI, where the comparison must be able to fail).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from plan_samples import in_sync_plan, sample_plan

from reconciler.engine.plan import Plan
from reconciler.render import json as json_render
from reconciler.render import markdown, text

GOLDEN = Path(__file__).parents[1] / "golden"

CASES: dict[str, Callable[[], str]] = {
    "plan.txt": lambda: text.render(sample_plan(), color=False),
    "plan-color.txt": lambda: text.render(sample_plan(), color=True),
    "plan-in-sync.txt": lambda: text.render(in_sync_plan(), color=False),
    "plan.md": lambda: markdown.render(sample_plan()),
    "plan-in-sync.md": lambda: markdown.render(in_sync_plan()),
    "plan.json": lambda: json_render.render(sample_plan()),
}


def updating(environ: Mapping[str, str]) -> bool:
    """Whether the golden files are to be rewritten (``UPDATE_GOLDEN``).  Refused under CI: a
    rewritten file matches whatever was rendered, so the comparison could not fail there."""
    if not environ.get("UPDATE_GOLDEN"):
        return False
    if environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail("UPDATE_GOLDEN is refused under CI (CI=true): golden files change by review")
    return True


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_golden(name: str) -> None:
    rendered = CASES[name]()
    path = GOLDEN / name
    if updating(os.environ):
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    assert rendered == path.read_text(encoding="utf-8")


def test_update_golden_is_refused_under_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="UPDATE_GOLDEN is refused under CI"):
        updating({"UPDATE_GOLDEN": "1", "CI": "true"})
    assert updating({"UPDATE_GOLDEN": "1"}) is True
    assert updating({"UPDATE_GOLDEN": "1", "CI": "false"}) is True
    assert updating({"CI": "true"}) is False


def test_colour_only_when_asked() -> None:
    plain = text.render(sample_plan(), color=False)
    coloured = text.render(sample_plan(), color=True)
    assert "\x1b[" not in plain
    assert "\x1b[32m+\x1b[0m" in coloured  # green +
    assert "\x1b[33m~\x1b[0m" in coloured  # yellow ~
    assert "\x1b[31m-\x1b[0m" in coloured  # red -
    assert "\x1b[1m  # asset" in coloured  # bold header


def _only(plan: Plan) -> str:
    return text.render(plan, color=False)


def test_in_sync_assets_are_not_listed() -> None:
    out = _only(in_sync_plan())
    assert out.strip() == "No changes. Live assets match the manifests."
    assert "Narrator" not in _only(sample_plan())
