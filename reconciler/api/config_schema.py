"""The JSON Schema of ``reconciler.yaml`` (``reconciler schema --settings``,
docs/reconciler.schema.json): editors complete and check the file while it is typed.

The checks that matter are :func:`reconciler.api.config.load_config`'s; the schema follows them
(the same keys, ranges and rule shapes) and offers every field path an ignore rule may name.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.api.rules import ENTRY_LISTS, SPEC, known_paths

_RULE_NAME = {
    "type": "string",
    "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
    "description": "The rule's name, shown in plans (and named by --allow-policy).",
}
_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}


def _paths() -> dict[str, Any]:
    fields = [f"{SPEC}." + ".".join(p) for p in known_paths()]
    entries = [f"{SPEC}.{'.'.join(p)}" for p in sorted(ENTRY_LISTS)]
    return {
        "description": "A field (spec.asset_order), a nested field, a system property "
        "(spec.system_properties.KEY) or the entries of a set-like list matching a glob "
        "(spec.tags[campaign-*]); docs/ownership.md.",
        "anyOf": [
            {"enum": fields},
            {"type": "string", "pattern": r"^spec\.system_properties\.[^.\[\]]+$"},
            {
                "type": "string",
                "pattern": "^("
                + "|".join(e.replace(".", r"\.") for e in entries)
                + r")\[[^\[\]]+\]$",
            },
        ],
    }


def _match() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Which assets the rule is about; every key given must hold.",
        "additionalProperties": False,
        "properties": {
            "asset_type": {**_STRINGS, "description": "The asset's type is one of these."},
            "labels": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "The manifest's metadata.labels has every key: value given.",
            },
            "asset_ids": {**_STRINGS, "description": "The asset's id is one of these."},
        },
    }


def _ignore() -> dict[str, Any]:
    return {
        "type": "array",
        "description": "Fields someone else owns: not diffed, not sent, not drift "
        "(docs/ownership.md).",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "paths"],
            "properties": {
                "name": _RULE_NAME,
                "paths": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/path"}},
                "match": {"$ref": "#/$defs/match"},
            },
        },
    }


def _policies() -> dict[str, Any]:
    return {
        "type": "array",
        "description": "Changes to refuse, as CEL conditions over the planned change "
        "(docs/policies.md).",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "deny", "message"],
            "properties": {
                "name": _RULE_NAME,
                "match": {"$ref": "#/$defs/match"},
                "deny": {
                    "type": "string",
                    "minLength": 1,
                    "description": "CEL over before, after, changes, asset, labels, target; "
                    "true refuses the change.",
                },
                "message": {"type": "string", "minLength": 1},
            },
        },
    }


def _safety() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "max_change_percent": {"type": "number", "minimum": 0, "maximum": 100},
            "min_assets": {"type": "integer", "minimum": 0},
        },
    }


def _target() -> dict[str, Any]:
    text = {"type": "string", "minLength": 1}
    return {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {
            "region": {**text, "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]{1,3}$"},
            "project_id": {**text, "pattern": "^[!-~]+$"},
            "endpoint": {**text, "pattern": "^https?://"},
            "verify_tls": {"type": "boolean"},
            "rate_limits": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    api: {"type": "number", "minimum": 0, "maximum": 10000}
                    for api in ("list", "show", "update")
                },
            },
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
            "max_retries": {"type": "integer", "minimum": 0, "maximum": 20},
            "max_response_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1024},
            "credentials_env_prefix": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "safety": {"$ref": "#/$defs/safety"},
            "ignore": {"$ref": "#/$defs/ignore"},
            "policies": {"$ref": "#/$defs/policies"},
        },
    }


def config_json_schema() -> dict[str, Any]:
    """The schema (draft 2020-12) of reconciler.yaml."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "reconciler.yaml",
        "description": "Targets, state, the safety threshold, ignore and policy rules of "
        "reconciler (docs/configuration.md). Credentials never belong here.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "default_target": {"type": "string"},
            "state": {"type": "string", "description": "A file path or a postgresql:// URL."},
            "safety": {"$ref": "#/$defs/safety"},
            "targets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/target"}},
            "ignore": {"$ref": "#/$defs/ignore"},
            "policies": {"$ref": "#/$defs/policies"},
        },
        "$defs": {
            "target": _target(),
            "safety": _safety(),
            "ignore": _ignore(),
            "policies": _policies(),
            "match": _match(),
            "path": _paths(),
        },
    }


def config_json_schema_text() -> str:
    return json.dumps(config_json_schema(), indent=2) + "\n"
