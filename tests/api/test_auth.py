"""Credentials come from the environment under the SDK's names, then Terraform's, then a token."""

from __future__ import annotations

import httpx
import pytest

from reconciler.api.auth import AkSkAuth, Credentials, TokenAuth, credentials_from_env
from reconciler.errors import ConfigError
from reconciler.logs import redact


def test_sdk_names_win_over_terraform_names() -> None:
    env = {
        "HUAWEICLOUD_SDK_AK": "sdk-ak",
        "HUAWEICLOUD_SDK_SK": "sdk-sk",
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": "sdk-st",
        "HW_ACCESS_KEY": "tf-ak",
        "HW_SECRET_KEY": "tf-sk",
        "HUAWEICLOUD_SDK_PROJECT_ID": "proj-sdk",
        "HW_PROJECT_ID": "proj-tf",
    }
    creds = credentials_from_env(env)
    assert (creds.ak, creds.sk, creds.security_token) == ("sdk-ak", "sdk-sk", "sdk-st")
    assert creds.project_id == "proj-sdk"
    assert creds.kind == "aksk"


def test_terraform_names_are_the_fallback() -> None:
    env = {
        "HW_ACCESS_KEY": "tf-ak",
        "HW_SECRET_KEY": "tf-sk",
        "HW_SECURITY_TOKEN": "tf-st",
        "HW_PROJECT_ID": "proj-tf",
    }
    creds = credentials_from_env(env)
    assert (creds.ak, creds.sk, creds.security_token, creds.project_id) == (
        "tf-ak",
        "tf-sk",
        "tf-st",
        "proj-tf",
    )


def test_token_when_no_aksk() -> None:
    creds = credentials_from_env({"HW_AUTH_TOKEN": "iam-token-value"})
    assert creds.kind == "token"
    assert creds.token == "iam-token-value"


def test_nothing_set_names_the_variables() -> None:
    with pytest.raises(ConfigError) as info:
        credentials_from_env({})
    assert str(info.value) == (
        "no credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK (or HW_AUTH_TOKEN)"
    )


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"HUAWEICLOUD_SDK_AK": "a"}, "HUAWEICLOUD_SDK_SK"),
        ({"HUAWEICLOUD_SDK_SK": "s"}, "HUAWEICLOUD_SDK_AK"),
        ({"HW_ACCESS_KEY": "a", "HW_AUTH_TOKEN": "t"}, "HW_SECRET_KEY"),
    ],
)
def test_half_a_key_pair_names_the_missing_half(env: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigError) as info:
        credentials_from_env(env)
    assert f"set {missing} too" in str(info.value)
    assert "\n" not in str(info.value)


def test_blank_values_count_as_unset() -> None:
    creds = credentials_from_env(
        {"HUAWEICLOUD_SDK_AK": " ", "HUAWEICLOUD_SDK_SK": "", "HW_AUTH_TOKEN": "tok-1234"}
    )
    assert creds.kind == "token"


def test_repr_and_log_redaction_hide_every_secret() -> None:
    env = {
        "HUAWEICLOUD_SDK_AK": "AKVALUE-123",
        "HUAWEICLOUD_SDK_SK": "SKVALUE-456",
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": "STVALUE-789",
    }
    creds = credentials_from_env(env)
    for text in (repr(creds), str(creds), repr(AkSkAuth(creds, "p"))):
        for secret in env.values():
            assert secret not in text
    # registered with the log redactor as soon as they were read
    assert redact("sk is SKVALUE-456 and ak AKVALUE-123") == "sk is *** and ak ***"


def test_token_auth_sets_token_and_project_headers() -> None:
    creds = Credentials(token="tok-abcdef")
    request = httpx.Request("GET", "https://example.test/v1/p/digital-assets")
    flow = TokenAuth(creds, "p").auth_flow(request)
    sent = next(flow)
    assert sent.headers["X-Auth-Token"] == "tok-abcdef"
    assert sent.headers["X-Project-Id"] == "p"
    assert "Authorization" not in sent.headers
    assert "tok-abcdef" not in repr(TokenAuth(creds, "p"))


def test_credentials_choose_their_flow() -> None:
    assert isinstance(Credentials(ak="a", sk="s").auth("p"), AkSkAuth)
    assert isinstance(Credentials(token="t").auth("p"), TokenAuth)


def test_a_prefix_reads_its_own_family_and_never_the_plain_names() -> None:
    env = {
        "PROD_HUAWEICLOUD_SDK_AK": "prod-ak",
        "PROD_HUAWEICLOUD_SDK_SK": "prod-sk-secret",
        "PROD_HUAWEICLOUD_SDK_PROJECT_ID": "p-prod",
        "HUAWEICLOUD_SDK_AK": "plain-ak",
        "HUAWEICLOUD_SDK_SK": "plain-sk-secret",
    }
    prod = credentials_from_env(env, "PROD_")
    assert (prod.ak, prod.sk, prod.project_id) == ("prod-ak", "prod-sk-secret", "p-prod")
    assert credentials_from_env(env).ak == "plain-ak"
    plain_only = {k: v for k, v in env.items() if not k.startswith("PROD_")}
    with pytest.raises(
        ConfigError, match="set PROD_HUAWEICLOUD_SDK_AK and PROD_HUAWEICLOUD_SDK_SK"
    ):
        credentials_from_env(plain_only, "PROD_")
    with pytest.raises(ConfigError, match="PROD_HW_ACCESS_KEY is set, set PROD_HW_SECRET_KEY"):
        credentials_from_env({"PROD_HW_ACCESS_KEY": "x"}, "PROD_")
    token = credentials_from_env({"PROD_HW_AUTH_TOKEN": "prod-token-value"}, "PROD_")
    assert token.kind == "token" and redact("prod-token-value") == "***"


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("HUAWEICLOUD_SDK_AK", "AKIA\x1b[31mX", "a control character"),
        ("HUAWEICLOUD_SDK_SK", "zq9Sk-\u00e9t\u00e9", "a non-ASCII character"),
        ("HUAWEICLOUD_SDK_SECURITY_TOKEN", "tok\r\nX-Injected: 1", "a control character"),
        ("HW_SECRET_KEY", "tfZq9k\x00", "a control character"),
        ("HUAWEICLOUD_SDK_PROJECT_ID", "proj ect", "a space"),
    ],
)
def test_malformed_credentials_name_the_variable_never_the_value(
    name: str, value: str, kind: str
) -> None:
    env = {"HUAWEICLOUD_SDK_AK": "ak-value", "HUAWEICLOUD_SDK_SK": "sk-value"}
    if name.startswith("HW_"):
        env = {"HW_ACCESS_KEY": "tf-access"}
    env[name] = value
    with pytest.raises(ConfigError) as info:
        credentials_from_env(env)
    message = str(info.value)
    assert message.startswith(f"{name}: the ") and kind in message
    assert value.strip() not in message and value[:6] not in message


def test_a_malformed_token_is_refused_too() -> None:
    with pytest.raises(ConfigError, match="HW_AUTH_TOKEN: the token contains a non-ASCII"):
        credentials_from_env({"HW_AUTH_TOKEN": "token-\u4e2d\u6587"})


@pytest.mark.parametrize(
    ("name", "value", "where"),
    [
        ("HUAWEICLOUD_SDK_AK", " AKVALUE-123", "before"),
        ("HUAWEICLOUD_SDK_SK", "SKVALUE-456\n", "after"),
        ("HUAWEICLOUD_SDK_SECURITY_TOKEN", "STVALUE-789\r\n", "after"),
        ("HW_ACCESS_KEY", "\tTFACCESS-1", "before"),
        ("HW_SECRET_KEY", "TFSECRET-2 ", "after"),
        ("HW_SECURITY_TOKEN", " TFTOKEN-3 ", "before"),
        ("HW_AUTH_TOKEN", "IAMTOKEN-4\n", "after"),
        ("HUAWEICLOUD_SDK_PROJECT_ID", "proj-5 ", "after"),
    ],
)
def test_surrounding_whitespace_is_refused_naming_the_variable_never_the_value(
    name: str, value: str, where: str
) -> None:
    env = {
        "HW_ACCESS_KEY" if name.startswith("HW_") else "HUAWEICLOUD_SDK_AK": "AK-PAIR-0",
        "HW_SECRET_KEY" if name.startswith("HW_") else "HUAWEICLOUD_SDK_SK": "SK-PAIR-0",
    }
    if name == "HW_AUTH_TOKEN":
        env = {}
    env[name] = value
    with pytest.raises(ConfigError) as info:
        credentials_from_env(env)
    message = str(info.value)
    assert (
        message.startswith(f"{name}: the ")
        and f"whitespace (a space, tab or line break) {where}" in message
    )
    assert value.strip() not in message and "\n" not in message
