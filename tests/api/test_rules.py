"""``ignore:`` and ``policies:`` of reconciler.yaml: parsed, checked, refused with a hint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reconciler.api import rules
from reconciler.api.config import load_config
from reconciler.api.rules import IgnorePath, Match, RuleError, parse_path
from reconciler.errors import ConfigError


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reconciler.yaml"
    path.write_text(text, encoding="utf-8")
    return path


FULL = """\
ignore:
  - name: console-owns-order
    paths: [spec.asset_order]
    match: {asset_type: [VOICE_MODEL]}
  - name: campaign-tags
    paths: ["spec.tags[campaign-*]"]
policies:
  - name: keep-live-avatars-active
    match: {asset_type: [HUMAN_MODEL_2D], labels: {live: "yes"}}
    deny: "after.asset_state == 'UNACTIVED'"
    message: live avatars stay active
targets:
  prod:
    project_id: p1
    region: cn-north-4
    ignore:
      - name: pm-descriptions
        paths: [spec.asset_description]
        match: {asset_ids: [a-1]}
    policies:
      - name: no-renames
        deny: "'asset_name' in changes"
        message: names are fixed in prod
  staging:
    project_id: p2
    region: cn-north-4
"""


def test_the_files_rules_then_the_targets_own(tmp_path: Path) -> None:
    loaded = load_config(config(tmp_path, FULL))
    assert [r.name for r in loaded.ignore_rules("prod")] == [
        "console-owns-order",
        "campaign-tags",
        "pm-descriptions",
    ]
    assert [r.name for r in loaded.ignore_rules("staging")] == [
        "console-owns-order",
        "campaign-tags",
    ]
    assert [r.name for r in loaded.policy_rules("prod")] == [
        "keep-live-avatars-active",
        "no-renames",
    ]
    first = loaded.ignore[0]
    assert first.paths == (IgnorePath(("asset_order",)),)
    assert first.match == Match(asset_types=frozenset({"VOICE_MODEL"}))
    assert loaded.ignore[1].paths == (IgnorePath(("tags",), "campaign-*"),)
    assert loaded.policies[0].match.labels == {"live": "yes"}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "ignore:\n  - name: x\n    paths: [spec.asset_ordr]\n",
            "ignore[0].paths[0]: 'spec.asset_ordr': no such field in an asset's spec; "
            "did you mean 'spec.asset_order'?",
        ),
        (
            "ignore:\n  - name: x\n    paths:\n"
            "      - spec.asset_extra_meta.voice_model_meta.sped_ratio\n",
            "did you mean 'spec.asset_extra_meta.voice_model_meta.speed_ratio'?",
        ),
        ("ignore:\n  - name: x\n    paths: [asset_order]\n", "a field path starts with spec."),
        (
            "ignore:\n  - name: x\n    paths: ['spec.asset_name[a*]']\n",
            "entries can be ignored by pattern only in a set-like list",
        ),
        (
            "ignore:\n  - name: x\n    paths: [spec.shared_config.expire_time]\n",
            "shared_config is write-only",
        ),
        (
            "ignore:\n  - name: x\n    paths:\n"
            "      - spec.asset_extra_meta.voice_model_meta.voice_capability\n",
            "a read-only field is never managed",
        ),
        (
            "ignore:\n  - name: x\n    pahts: [spec.tags]\n",
            "unknown key (allowed: name, paths, match); did you mean 'paths'?",
        ),
        ("ignore:\n  - paths: [spec.tags]\n", "ignore[0].name: expected a rule name"),
        (
            "ignore:\n  - {name: x, paths: [spec.tags]}\n  - {name: x, paths: [spec.tags]}\n",
            "two rules are named 'x'",
        ),
        (
            "ignore:\n  - {name: x, paths: [spec.tags], match: {type: [A]}}\n",
            "ignore[0].match.type: unknown key",
        ),
        ("policies:\n  - {name: p, deny: 'true'}\n", "policies[0].message: expected the text"),
        (
            "policies:\n  - {name: p, deny: 'after.x ==', message: m}\n",
            "policies[0] (p).deny: the condition does not parse",
        ),
        (
            "policies:\n  - {name: p, deny: 'true', message: m}\n"
            "targets:\n  prod:\n    policies:\n      - {name: p, deny: 'true', message: m}\n",
            "targets.prod.policies: 'p' is already the name of a rule",
        ),
    ],
)
def test_a_bad_rule_is_refused_naming_the_file_and_the_key(
    tmp_path: Path, text: str, said: str
) -> None:
    path = config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert said in str(caught.value)


def test_policies_without_the_cel_library_say_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cel", None)  # import cel now raises ImportError
    monkeypatch.setitem(sys.modules, "cel.cel", None)
    rules._cel.cache_clear()
    try:
        path = config(tmp_path, "policies:\n  - {name: p, deny: 'true', message: m}\n")
        with pytest.raises(ConfigError, match=r"pip install 'metastudio-reconciler\[policies\]'"):
            load_config(path)
        assert load_config(config(tmp_path, "ignore: []\n")).ignore == ()
    finally:
        rules._cel.cache_clear()


def test_a_system_property_key_may_be_named_but_not_by_pattern() -> None:
    assert parse_path("spec.system_properties.BACKGROUND_IMG").path == (
        "system_properties",
        "BACKGROUND_IMG",
    )
    with pytest.raises(RuleError):
        parse_path("spec.system_properties[A*]")


def test_the_table_of_field_paths_is_the_request_models() -> None:
    from reconciler.api.rules import KNOWN_PATHS, derive_known_paths

    assert list(KNOWN_PATHS) == derive_known_paths()
