"""``metadata.ignore``: a manifest's own list of fields someone else owns."""

from __future__ import annotations

from pathlib import Path

from reconciler.engine.planner import desired_from_loaded
from reconciler.manifest import load_manifests
from reconciler.manifest.loader import declared_chunk, problems_in_text

TEXT = """\
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: a-1
  ignore: [spec.asset_order, "spec.tags[campaign-*]"]
spec:
  asset_order: 9
"""


def test_a_misspelt_path_is_a_problem_at_its_line_with_a_hint() -> None:
    text = TEXT.replace("spec.asset_order,", "spec.asset_ordr,")
    (problem,) = problems_in_text(text, "m.yaml")
    assert str(problem).startswith("m.yaml:5:")
    assert "metadata.ignore" in str(problem)
    assert "did you mean 'spec.asset_order'?" in str(problem)


def test_the_paths_reach_the_engine_as_the_manifests_own_rule(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(TEXT, encoding="utf-8")
    (loaded,) = load_manifests([path])
    assert loaded.ignore == ("spec.asset_order", "spec.tags[campaign-*]")
    (rule,) = desired_from_loaded(loaded).own_ignore
    assert rule.name == "metadata.ignore"
    assert [p.text for p in rule.paths] == ["asset_order", "tags[campaign-*]"]
    # The plain view that worker processes hand over carries them too.
    (declared,) = declared_chunk([str(path)])[0][1]
    assert desired_from_loaded(declared).own_ignore == desired_from_loaded(loaded).own_ignore
