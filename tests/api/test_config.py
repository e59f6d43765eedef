"""Targets resolve flags > reconciler.yaml > environment, and bad config names file and key."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from reconciler.api.config import (
    REGION_RATE_LIMITS,
    RateLimits,
    load_config,
    resolve_target,
)
from reconciler.errors import ConfigError
from reconciler.options import GlobalOptions

CONFIG = """\
default_target: prod
state: .reconciler/state.sqlite
targets:
  prod:
    region: cn-north-4
    project_id: proj-prod
  sg:
    region: ap-southeast-3
    project_id: proj-sg
    rate_limits: {update: 2}
    timeout: 12
    max_retries: 2
  local:
    project_id: proj-local
    endpoint: http://127.0.0.1:9000/
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "reconciler.yaml"
    path.write_text(CONFIG)
    return path


def resolve(options: GlobalOptions, name: str | None = None, **env: str) -> object:
    return resolve_target(options, name, env=env)


def test_default_target_from_file(config_file: Path) -> None:
    target = resolve_target(GlobalOptions(config=config_file), env={})
    assert target.name == "prod"
    assert target.endpoint == "https://metastudio.cn-north-4.myhuaweicloud.com"
    assert target.project_id == "proj-prod"
    assert target.rate_limits == RateLimits(list=20, show=20, update=10)
    assert target.verify_tls is True
    assert target.max_retries == 5


def test_state_path_is_relative_to_the_config_file(config_file: Path) -> None:
    assert load_config(config_file).state == config_file.parent / ".reconciler/state.sqlite"


def test_named_target_with_overrides(config_file: Path) -> None:
    target = resolve_target(GlobalOptions(config=config_file, target="sg"), env={})
    assert target.endpoint == "https://metastudio.ap-southeast-3.myhuaweicloud.com"
    assert target.rate_limits == RateLimits(list=10, show=10, update=2)
    assert (target.timeout, target.max_retries) == (12.0, 2)


def test_manifest_target_wins_over_flag(config_file: Path) -> None:
    target = resolve_target(GlobalOptions(config=config_file, target="sg"), "local", env={})
    assert target.name == "local"
    assert target.endpoint == "http://127.0.0.1:9000"


def test_flags_win_over_file_and_environment(config_file: Path) -> None:
    options = GlobalOptions(
        config=config_file,
        project_id="flag-proj",
        region="cn-east-3",
        endpoint="http://127.0.0.1:1",
    )
    target = resolve_target(options, env={"HUAWEICLOUD_SDK_PROJECT_ID": "env-proj"})
    assert target.project_id == "flag-proj"
    assert target.region == "cn-east-3"
    assert target.endpoint == "http://127.0.0.1:1"
    assert target.rate_limits == REGION_RATE_LIMITS["cn-east-3"]


def test_environment_only_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = resolve_target(
        GlobalOptions(), env={"HW_PROJECT_ID": "tf-proj", "HW_REGION_NAME": "cn-east-3"}
    )
    assert (target.name, target.project_id, target.region) == ("default", "tf-proj", "cn-east-3")
    assert target.endpoint == "https://metastudio.cn-east-3.myhuaweicloud.com"


def test_sdk_project_variable_wins_over_terraform_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "HW_PROJECT_ID": "tf",
        "HUAWEICLOUD_SDK_PROJECT_ID": "sdk",
        "HW_REGION_NAME": "cn-north-4",
    }
    assert resolve_target(GlobalOptions(), env=env).project_id == "sdk"


def test_reconciler_yaml_in_the_working_directory_is_used(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(config_file.parent)
    assert resolve_target(GlobalOptions(), env={}).name == "prod"


def test_sdk_region_endpoint_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "HW_PROJECT_ID": "p",
        "HW_REGION_NAME": "ap-southeast-3",
        "HUAWEICLOUD_SDK_REGION_METASTUDIO_AP_SOUTHEAST_3": "https://ms.example.test,https://b.test",
    }
    assert resolve_target(GlobalOptions(), env=env).endpoint == "https://ms.example.test"


def test_missing_project_names_flag_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        resolve_target(GlobalOptions(region="cn-north-4"), env={})
    message = str(info.value)
    assert "--project-id" in message and "HUAWEICLOUD_SDK_PROJECT_ID" in message
    assert "\n" not in message


def test_missing_region_and_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no region: pass --region or --endpoint"):
        resolve_target(GlobalOptions(project_id="p"), env={})


def test_unknown_target_lists_known_ones(config_file: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_target(GlobalOptions(config=config_file, target="staging"), env={})
    assert str(config_file) in str(info.value)
    assert "'staging'" in str(info.value) and "local, prod, sg" in str(info.value)


def test_missing_config_flag_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        resolve_target(GlobalOptions(config=tmp_path / "nope.yaml"), env={})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("targets:\n  prod:\n    region: cn-north-4\n    ak: AKXXXX\n", "targets.prod.ak"),
        ("targets:\n  prod:\n    sk: x\n", "targets.prod.sk"),
        ("token: abc\n", "token"),
        ("targets:\n  prod:\n    regoin: cn-north-4\n", "targets.prod.regoin"),
        ("targets:\n  prod:\n    timeout: fast\n", "targets.prod.timeout"),
        ("targets:\n  prod:\n    verify_tls: 'no'\n", "targets.prod.verify_tls"),
        ("targets:\n  prod:\n    rate_limits: {delete: 3}\n", "targets.prod.rate_limits.delete"),
        ("targets:\n  prod:\n    endpoint: ftp://x\n", "targets.prod.endpoint"),
        ("default_target: nope\ntargets: {a: {}}\n", "default_target"),
        ("targets: [a, b]\n", "targets"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {key}:")
    if "ak" in key or "sk" in key:
        assert "AKXXXX" not in str(info.value)
        assert "HUAWEICLOUD_SDK_AK" in str(info.value)


def test_invalid_yaml_is_one_config_error(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text("targets: {prod: [\n")
    with pytest.raises(ConfigError, match=r"reconciler.yaml:2:1: YAML syntax error"):
        load_config(path)


def test_tls_off_is_explicit_and_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text(
        "targets:\n  t:\n    region: cn-north-4\n    project_id: p\n    verify_tls: false\n"
    )
    with caplog.at_level(logging.WARNING, logger="reconciler"):
        target = resolve_target(GlobalOptions(config=path), env={})
    assert target.verify_tls is False
    assert "TLS certificate verification is OFF" in caplog.text


def test_hw_insecure_turns_tls_off(config_file: Path) -> None:
    assert (
        resolve_target(GlobalOptions(config=config_file), env={"HW_INSECURE": "true"}).verify_tls
        is False
    )
    assert (
        resolve_target(GlobalOptions(config=config_file), env={"HW_INSECURE": "false"}).verify_tls
        is True
    )


def test_credentials_env_prefix_is_kept_and_reads_the_prefixed_project(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text(
        "targets:\n  prod:\n    region: cn-north-4\n    credentials_env_prefix: PROD_\n"
        "  staging:\n    region: cn-north-4\n"
    )
    env = {"PROD_HUAWEICLOUD_SDK_PROJECT_ID": "p-prod", "HUAWEICLOUD_SDK_PROJECT_ID": "p-plain"}
    prod = resolve_target(GlobalOptions(config=path), "prod", env=env)
    assert (prod.credentials_env_prefix, prod.project_id) == ("PROD_", "p-prod")
    staging = resolve_target(GlobalOptions(config=path), "staging", env=env)
    assert (staging.credentials_env_prefix, staging.project_id) == ("", "p-plain")
    with pytest.raises(ConfigError, match="set PROD_HUAWEICLOUD_SDK_PROJECT_ID"):
        resolve_target(GlobalOptions(config=path), "prod", env={})


@pytest.mark.parametrize("value", ['""', "1PROD_", "PROD-", "[a]", "true"])
def test_bad_credentials_env_prefix_names_the_key(tmp_path: Path, value: str) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text(f"targets:\n  prod:\n    credentials_env_prefix: {value}\n")
    with pytest.raises(ConfigError, match=r"targets\.prod\.credentials_env_prefix"):
        load_config(path)


def test_implicit_target_is_the_default_else_the_only_one(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text("targets:\n  a: {region: cn-north-4}\n  b: {region: cn-north-4}\n")
    assert load_config(path).implicit_target is None
    path.write_text("default_target: b\ntargets:\n  a: {}\n  b: {}\n")
    assert load_config(path).implicit_target == "b"
    path.write_text("targets:\n  only: {}\n")
    assert load_config(path).implicit_target == "only"


def test_repeated_target_options_keep_every_name_once() -> None:
    assert GlobalOptions(targets=("a", "b", "a")).targets == ("a", "b")
    assert GlobalOptions(targets=("a", "b")).target is None
    assert GlobalOptions(targets=("a",)).target == "a"
    assert GlobalOptions(target="a").targets == ("a",)


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        (
            GlobalOptions(region="metastudio.example.com"),
            {},
            "--region: metastudio.example.com is a host or URL, not a region name",
        ),
        (GlobalOptions(region="cn-north-4/x"), {}, "--region:"),
        (
            GlobalOptions(),
            {"HW_REGION_NAME": "https://x"},
            "HW_REGION_NAME: https://x is a host or URL",
        ),
        (
            GlobalOptions(region="cn-north-4", project_id="p\x1bq"),
            {},
            "--project-id: the project id contains a control character",
        ),
        (
            GlobalOptions(endpoint="https://user:s3cr3t@ms.example.test"),
            {},
            "must not hold a user name or password",
        ),
        (GlobalOptions(endpoint="http://127.0.0.1:99999"), {}, "has an invalid port"),
        (GlobalOptions(endpoint="http://ex ample.test"), {}, "contains spaces"),
    ],
)
def test_regions_project_ids_and_endpoints_are_checked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: GlobalOptions,
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"HUAWEICLOUD_SDK_PROJECT_ID": "p", **env}
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        resolve_target(options, env=env)
    assert "s3cr3t" not in str(info.value)


@pytest.mark.parametrize("region", ["cn-north-4", "ap-southeast-3", "eu-west-101", "la-north-2"])
def test_real_region_names_pass(region: str, tmp_path: Path) -> None:
    target = resolve_target(
        GlobalOptions(region=region, project_id="p"), env={}, config=load_config(None)
    )
    assert target.region == region


def test_max_response_mb_is_a_target_setting(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text("targets:\n  t: {region: cn-north-4, project_id: p, max_response_mb: 4}\n")
    target = resolve_target(GlobalOptions(config=path), env={})
    assert target.max_response_mb == 4
    assert (
        resolve_target(GlobalOptions(region="cn-north-4", project_id="p"), env={}).max_response_mb
        == 32
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: &x 1\nb: *x\n",
            "reconciler.yaml:2:4: aliases (*x) are not allowed in a settings file",
        ),
        ("targets: {t: {timeout: .nan}}\n", ".nan is not a finite number"),
        ("targets: {t: {timeout: 1e9}}\n", "timeout: expected a number of seconds above 0"),
        ("targets: {}\n---\ntargets: {}\n", "holds one YAML document"),
        ("targets: !!python/object:os.system {}\n", "YAML tag !!python/object:os.system"),
        ("targets: " + "[" * 5000 + "]" * 5000 + "\n", "nesting deeper than 32 levels"),
        ("targets:\n  a: {}\n  a: {}\n", "reconciler.yaml:3:3: duplicate key 'a'"),
        ("targets: {t: {rate_limits: {list: 1e300}}}\n", "at most 10000 (0 = unpaced)"),
        ("targets: {t: {max_response_mb: 5000}}\n", "expected a size in MiB above 0, at most 1024"),
        ("targets: {t: {max_retries: .inf}}\n", ".inf is not a finite number"),
    ],
)
def test_settings_file_is_read_safely(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_safety_settings_of_the_file_and_of_a_target(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text(
        "safety: {max_change_percent: 20, min_assets: 5}\n"
        "targets:\n"
        "  prod: {project_id: p, region: cn-north-4}\n"
        "  staging: {project_id: s, region: cn-north-4, safety: {max_change_percent: 90}}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.safety_settings("prod") == {"max_change_percent": 20, "min_assets": 5}
    assert config.safety_settings("staging") == {"max_change_percent": 90, "min_assets": 5}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("safety: 30\n", "safety: expected a mapping"),
        ("safety: {max_change_percent: -1}\n", "safety.max_change_percent: expected a percentage"),
        ("safety: {min_assets: 2.5}\n", "safety.min_assets: expected a whole number"),
        ("safety: {max_changes: 3}\n", "safety.max_changes: unknown key"),
        (
            "targets: {a: {project_id: p, safety: {min_assets: true}}}\n",
            "targets.a.safety.min_assets: expected a whole number",
        ),
    ],
)
def test_bad_safety_settings_name_the_key(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("targets:\n  prod:\n    timeout: .nan\n", "3:14: targets.prod.timeout: .nan"),
        ("targets:\n  t:\n    max_response_mb: -.inf\n", "3:22: targets.t.max_response_mb: -.inf"),
        (
            "targets: {t: {rate_limits: {update: .inf}}}\n",
            "1:37: targets.t.rate_limits.update: .inf",
        ),
        ("safety:\n  max_change_percent: 1e999\n", "2:23: safety.max_change_percent: 1e999"),
        ("safety:\n  max_change_percent:\n    .NaN\n", "3:5: safety.max_change_percent: .NaN"),
    ],
)
def test_a_non_finite_setting_names_the_file_and_the_key(
    tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:{where} is not a finite number"
