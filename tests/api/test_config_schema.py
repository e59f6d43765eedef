"""The JSON Schema of reconciler.yaml: what editors check agrees with what the tool reads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from reconciler.api import config
from reconciler.api.config_schema import config_json_schema
from reconciler.cli.main import cli

ROOT = Path(__file__).parents[2]
VALIDATOR = jsonschema.Draft202012Validator(config_json_schema())


def yaml_blocks(doc: str) -> list[Any]:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_the_committed_schema_is_what_the_command_prints() -> None:
    printed = CliRunner().invoke(cli, ["schema", "--settings"])
    assert printed.exit_code == 0
    committed = (ROOT / "docs" / "reconciler.schema.json").read_text(encoding="utf-8")
    assert printed.output == committed, (
        "regenerate: reconciler schema --settings > docs/reconciler.schema.json"
    )
    json.loads(committed)


def test_it_names_every_key_the_file_may_hold() -> None:
    schema = config_json_schema()
    assert set(schema["properties"]) == config._TOP_KEYS
    assert set(schema["$defs"]["target"]["properties"]) == config._TARGET_KEYS


@pytest.mark.parametrize(
    ("doc", "index"),
    [("configuration.md", 0), ("ownership.md", 0), ("policies.md", 0), ("policies.md", 1)],
)
def test_the_documented_examples_are_valid_for_the_schema_and_the_tool(
    doc: str, index: int, tmp_path: Path
) -> None:
    example = yaml_blocks(doc)[index]
    VALIDATOR.validate(example)
    path = tmp_path / "reconciler.yaml"
    path.write_text(yaml.safe_dump(example), encoding="utf-8")
    config.load_config(path)


@pytest.mark.parametrize(
    "bad",
    [
        {"ignore": [{"name": "x", "paths": ["spec.asset_ordr"]}]},
        {"ignore": [{"name": "x", "paths": ["spec.asset_name[a*]"]}]},
        {"ignore": [{"name": "x", "pahts": ["spec.tags"]}]},
        {"policies": [{"name": "p", "deny": "true"}]},
        {"targets": {"prod": {"ignore": [{"name": "x", "paths": []}]}}},
    ],
)
def test_a_rule_the_tool_refuses_is_flagged_by_the_schema_too(bad: dict[str, Any]) -> None:
    assert not VALIDATOR.is_valid(bad)


def test_paths_the_tool_accepts_are_offered() -> None:
    good = {
        "ignore": [
            {
                "name": "x",
                "paths": [
                    "spec.asset_order",
                    "spec.tags[campaign-*]",
                    "spec.asset_extra_meta.voice_model_meta.languages[zh*]",
                    "spec.system_properties.BACKGROUND_IMG",
                    "spec.asset_extra_meta.human_model_2d_meta.model_resolution",
                ],
            }
        ]
    }
    VALIDATOR.validate(good)
