"""The JSON Schema editors get: every property described, examples that are valid, no $id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from reconciler.manifest.loader import load_manifests
from reconciler.manifest.schema import manifest_json_schema
from reconciler.manifest.schema_docs import DESCRIPTIONS, DOCUMENT_EXAMPLE, EXAMPLES


def properties(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(definition, property, its schema) for the document and every definition."""
    for name, node in [("", schema), *schema["$defs"].items()]:
        for key, prop in node.get("properties", {}).items():
            yield name, key, prop


def test_every_property_has_a_description() -> None:
    schema = manifest_json_schema()
    found = list(properties(schema))
    assert len(found) > 70
    missing = [f"{name}.{key}" for name, key, prop in found if not prop.get("description")]
    assert missing == []


def test_the_description_table_names_only_real_properties() -> None:
    schema = manifest_json_schema()
    real = {(name, key) for name, key, _ in properties(schema)}
    for table in (DESCRIPTIONS, EXAMPLES):
        listed = {(name, key) for name, keys in table.items() for key in keys}
        assert listed - real == set(), "a model was renamed: update schema_docs.py"


def test_enumerations_and_ranges_come_from_the_reference() -> None:
    defs = manifest_json_schema()["$defs"]
    voice = defs["ManifestVoiceModelMeta"]["properties"]
    assert voice["order"]["maximum"] == 32767 and "999" in voice["order"]["description"]
    assert "UNKNOW" in voice["sex"]["enum"] and "UNKNOW" in voice["sex"]["description"]
    spec = defs["AssetSpec"]["properties"]
    for value in spec["supported_service"]["items"]["enum"]:
        assert value in spec["supported_service"]["description"]


def test_there_is_no_made_up_id() -> None:
    assert "$id" not in manifest_json_schema()


def test_every_example_is_valid(tmp_path: Path) -> None:
    schema = manifest_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(DOCUMENT_EXAMPLE)
    checked = 0
    for _, _key, prop in properties(schema):
        for example in prop.get("examples", []):
            jsonschema.Draft202012Validator({**prop, "$defs": schema["$defs"]}).validate(example)
            checked += 1
    assert checked >= 10
    # And reconciler itself accepts the document example.
    path = tmp_path / "example.yaml"
    path.write_text(yaml.safe_dump(DOCUMENT_EXAMPLE), encoding="utf-8")
    assert len(load_manifests([str(path)])) == 1
