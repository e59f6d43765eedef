"""``state:`` of reconciler.yaml and ``RECONCILER_STATE``: a path keeps SQLite, a URL selects
PostgreSQL, a password never sits in the file and never reaches a log line."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.api.config import load_config
from reconciler.errors import ConfigError
from reconciler.logs import redact
from reconciler.run.session import STATE_ENV, hide_url_password, state_location

URL = "postgresql://ci@db.internal:5432/reconciler"


def config_with(tmp_path: Path, state: str) -> Path:
    path = tmp_path / "conf" / "reconciler.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"state: {state}\n", encoding="utf-8")
    return path


def test_a_state_path_is_a_file_beside_the_config_file(tmp_path: Path) -> None:
    path = config_with(tmp_path, "shared/state.sqlite")
    assert load_config(path).state == path.parent / "shared" / "state.sqlite"


@pytest.mark.parametrize(
    "url",
    [
        URL,
        "postgres://ci@db.internal/reconciler",
        "postgresql://ci@db.internal/reconciler?sslmode=verify-full&connect_timeout=5",
    ],
)
def test_a_database_url_without_a_password_is_kept_as_written(tmp_path: Path, url: str) -> None:
    assert load_config(config_with(tmp_path, url)).state == url


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://ci:hunter2-Secret@db.internal:5432/reconciler", "hunter2-Secret"),
        ("postgresql://ci:p%40ss%2Fword@db.internal/reconciler", "p%40ss%2Fword"),
        ("postgresql://ci@db.internal/reconciler?password=hunter2-Secret", "hunter2-Secret"),
        ("postgres://ci@db.internal/reconciler?sslmode=require&PASSWORD=hunter2", "hunter2"),
        ("postgresql://ci@db.internal/reconciler?sslpassword=key-Secret", "key-Secret"),
    ],
)
def test_a_database_url_with_a_password_in_the_file_is_refused_pointing_to_the_environment(
    tmp_path: Path, url: str, secret: str
) -> None:
    path = config_with(tmp_path, url)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: state: ")
    assert "must not hold a password" in message
    assert "RECONCILER_STATE" in message
    assert secret not in message


def test_a_key_value_connection_string_is_refused_not_taken_for_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_with(tmp_path, "'host=db.internal dbname=reconciler user=ci'")
    with pytest.raises(ConfigError, match=r"state: a key=value connection string is not supported"):
        load_config(path)
    monkeypatch.setenv(STATE_ENV, "host=db.internal dbname=reconciler password=hunter2")
    with pytest.raises(ConfigError) as refused:
        state_location(load_config(None))
    assert str(refused.value).startswith("RECONCILER_STATE: a key=value connection string")
    assert "hunter2" not in str(refused.value)
    assert not (tmp_path / "host=db.internal dbname=reconciler user=ci").exists()


def test_a_state_that_is_not_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text("state: [a, b]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"state: expected a file path or a postgresql:// URL"):
        load_config(path)


def test_the_environment_overrides_state_and_may_hold_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_with(tmp_path, "local.sqlite")
    config = load_config(path)
    monkeypatch.delenv(STATE_ENV, raising=False)
    assert state_location(config) == config.state == path.parent / "local.sqlite"
    monkeypatch.setenv(STATE_ENV, "   ")
    assert state_location(config) == config.state  # blank: as if unset
    secret_url = "postgresql://ci:Env-Secret-77@db.internal/reconciler"
    monkeypatch.setenv(STATE_ENV, f" {secret_url}\n")
    assert state_location(config) == secret_url
    assert redact("connecting with Env-Secret-77") == "connecting with ***"


def test_without_a_config_file_or_the_environment_the_default_file_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STATE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert state_location(load_config(None)) is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # percent-encoded in the URL; a driver's message may quote it decoded, or encoded
        ("postgresql://ci:p%40ss%2Fw0rd@db/reconciler", ["p@ss/w0rd", "p%40ss%2Fw0rd"]),
        ("postgresql://ci@db/reconciler?password=Query-Secret", ["Query-Secret"]),
        ("postgresql://ci@db/reconciler?sslpassword=Key-Secret", ["Key-Secret"]),
    ],
)
def test_a_url_password_is_hidden_from_every_log_line(url: str, shown: list[str]) -> None:
    hide_url_password(url)
    for secret in shown:
        assert redact(f"server said: bad password {secret!r}") == (
            "server said: bad password '***'"
        )


def test_a_file_path_registers_no_secret() -> None:
    hide_url_password("state/pass-word.sqlite")
    assert redact("state/pass-word.sqlite") == "state/pass-word.sqlite"


def test_the_environment_password_is_hidden_inside_a_url_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STATE_ENV, "postgresql://ci:Logged-Secret-9@db/reconciler")
    state_location(load_config(config_with(tmp_path, "x.sqlite")))
    assert redact("dsn=postgresql://ci:Logged-Secret-9@db/reconciler") == (
        "dsn=postgresql://ci:***@db/reconciler"
    )
