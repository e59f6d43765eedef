"""``reconciler validate`` and ``reconciler schema`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.manifest.schema import manifest_json_schema
from reconciler.yaml_safe import parse_documents

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parents[1] / "data" / "manifests"
EXAMPLES = sorted((ROOT / "manifests").glob("*.yaml"))


def test_validate_examples_exits_0() -> None:
    result = CliRunner().invoke(cli, ["validate", str(ROOT / "manifests")])
    assert result.exit_code == 0, result.output
    assert result.output == "5 manifests valid.\n"


def test_validate_defaults_to_manifests_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 0
    assert "5 manifests valid." in result.output


def test_validate_broken_prints_each_problem_and_fails() -> None:
    result = CliRunner().invoke(cli, ["validate", str(DATA / "broken")], standalone_mode=False)
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "ValidationFailed"
    assert str(result.exception) == "8 problems in 8 files."
    lines = result.stderr.splitlines()
    assert len(lines) == 8
    assert all(str(DATA / "broken") in line for line in lines)
    assert result.stdout == ""


def test_validate_as_a_real_process_has_no_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "tests/data/manifests/broken"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    stderr = proc.stderr.splitlines()
    assert stderr[-1] == "Error: 8 problems in 8 files."
    expected = [
        "tests/data/manifests/broken/bad_enum.yaml:7:3: spec.asset_state: Input should be "
        "'ACTIVED' or 'UNACTIVED' (got 'BLOCK')",
        "tests/data/manifests/broken/too_many_tags.yaml:6:3: spec.tags: List should have at "
        "most 50 items (got 51)",
        "tests/data/manifests/broken/tabs.yaml:6:1: tab character in indentation; YAML indents "
        "with spaces only",
    ]
    for line in expected:
        assert line in stderr


def test_schema_prints_json_schema_matching_the_committed_file() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    printed = json.loads(result.output)
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    committed = (ROOT / "docs" / "manifest.schema.json").read_text(encoding="utf-8")
    assert result.output == committed, "regenerate: reconciler schema > docs/manifest.schema.json"
    beside = (ROOT / "manifests" / "manifest.schema.json").read_text(encoding="utf-8")
    assert result.output == beside, "regenerate: reconciler schema > manifests/manifest.schema.json"


def _document(path: Path) -> dict[str, object]:
    docs, problems = parse_documents(path.read_text(encoding="utf-8"))
    assert not problems
    return docs[0].data  # type: ignore[no-any-return]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_schema_accepts_every_example(example: Path) -> None:
    jsonschema.Draft202012Validator(manifest_json_schema()).validate(_document(example))
    first = example.read_text(encoding="utf-8").splitlines()[0]
    # The schema line resolves where the manifests are, in this repository and wherever
    # they are copied with their folder (the demo writes the schema beside them too).
    assert first == "# yaml-language-server: $schema=manifest.schema.json"
    assert (example.parent / "manifest.schema.json").is_file()


@pytest.mark.parametrize(
    "change",
    [
        {"asset_state": "BLOCK"},
        {"tags": [f"t{i}" for i in range(51)]},
        {"asset_nam": "typo"},
        {"asset_description": None},
        {"asset_extra_meta": {"image_meta": {"width": 1}}},
        {"system_properties": {"NOPE": "x"}},
    ],
)
def test_schema_rejects_broken_manifests(change: dict[str, object]) -> None:
    document = _document(ROOT / "manifests" / "avatar.yaml")
    document["spec"] = {**document["spec"], **change}  # type: ignore[dict-item]
    validator = jsonschema.Draft202012Validator(manifest_json_schema())
    assert not validator.is_valid(document)


def test_schema_rejects_path_like_asset_id() -> None:
    document = _document(ROOT / "manifests" / "avatar.yaml")
    document["metadata"] = {"asset_id": "a..b"}
    assert not jsonschema.Draft202012Validator(manifest_json_schema()).is_valid(document)
