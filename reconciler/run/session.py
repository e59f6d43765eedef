"""Sessions: where a run talks to and as whom, one per target.

A :class:`Session` holds a target's configuration, its credentials (from the environment only),
its pacing and its retry tally.  Every session a run opens is also handed to whoever watches the
run (:func:`sessions_opened`), so that the command line can say what was retried whatever the
run's outcome, in its own words.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from reconciler.api.auth import Credentials, credentials_from_env
from reconciler.api.client import AnswerObserver, MetaStudioClient
from reconciler.api.config import (
    CONNECTION_STRING_REFUSED,
    ReconcilerConfig,
    Target,
    config_path,
    is_database_url,
    load_config,
    looks_like_connection_string,
    resolve_target,
    url_passwords,
)
from reconciler.api.pacing import Pacer
from reconciler.api.retries import RetryTally
from reconciler.constants import READ_PARALLELISM
from reconciler.engine.safety import SafetyPolicy
from reconciler.errors import ConfigError
from reconciler.logs import register_secret
from reconciler.options import GlobalOptions
from reconciler.state import StateStore, open_store

STATE_ENV = "RECONCILER_STATE"  # overrides ``state:`` of reconciler.yaml

# Progress of a counted stage: (what, done, total), e.g. ("reading live assets", 300, 1000).
StageCounter = Callable[[str, int, int], None]

_opened: ContextVar[list[Session] | None] = ContextVar("reconciler_sessions_opened", default=None)


@dataclass(frozen=True)
class Session:
    """Where a run talks to and as whom; credentials come from the environment only."""

    config: ReconcilerConfig
    target: Target
    credentials: Credentials
    on_answer: AnswerObserver | None = None  # sees every answer from the service (metrics)
    retries: RetryTally = field(default_factory=RetryTally)  # shared by the session's clients

    @functools.cached_property
    def pacer(self) -> Pacer:
        """The session's pacing, shared by its clients: the limits are the tenant's, so the
        apply that follows a plan in one run must not start with a full burst again."""
        return Pacer(self.target.rate_limits)

    def client(self, parallelism: int = READ_PARALLELISM) -> MetaStudioClient:
        return MetaStudioClient(
            self.target,
            self.credentials,
            parallelism=parallelism,
            on_answer=self.on_answer,
            tally=self.retries,
            pacer=self.pacer,
        )

    @property
    def place(self) -> tuple[str, str]:
        """The (endpoint, project) the session writes to: the key of its write lock."""
        return self.target.endpoint.rstrip("/"), self.target.project_id

    def store(self) -> StateStore:
        """The state (write-only records, locks, drift history) the configuration names."""
        return open_config_store(self.config)

    def safety(self, max_change_percent: float | None = None) -> SafetyPolicy:
        """The threshold: ``--max-change-percent``, else the target's or the file's ``safety:``,
        else the defaults."""
        settings = self.config.safety_settings(self.target.name)
        default = SafetyPolicy()
        return SafetyPolicy(
            max_change_percent=float(
                max_change_percent
                if max_change_percent is not None
                else settings.get("max_change_percent", default.max_change_percent)
            ),
            min_assets=int(settings.get("min_assets", default.min_assets)),
        )


class TargetNamed:
    """A target of a run by its name and, once opened, its session (the streamed runs' lanes and
    watch's targets both are)."""

    name: str | None
    session: Session | None

    @property
    def label(self) -> str:
        return self.session.target.name if self.session else (self.name or "default")

    @property
    def place(self) -> tuple[str | None, str | None]:
        """The project id and endpoint, when the session opened."""
        if self.session is None:
            return None, None
        return self.session.target.project_id, self.session.target.endpoint


def state_location(config: ReconcilerConfig) -> str | Path | None:
    """Where the state lives: ``RECONCILER_STATE`` (from a secret, so it may hold a password,
    which is registered for redaction), else ``state:`` of reconciler.yaml, else None (the
    default SQLite file)."""
    given = os.environ.get(STATE_ENV, "").strip()
    if not given:
        return config.state
    if looks_like_connection_string(given):
        raise ConfigError(f"{STATE_ENV}: {CONNECTION_STRING_REFUSED}")
    hide_url_password(given)
    return given


def hide_url_password(location: str) -> None:
    """Register the passwords of a database URL (user part, ``password`` or ``sslpassword`` in
    the query) for redaction, as written and percent-decoded: the driver's messages may quote
    either."""
    if not is_database_url(location):
        return
    for password in url_passwords(location):
        register_secret(password)
        register_secret(unquote(password))


def open_config_store(config: ReconcilerConfig) -> StateStore:
    """The state store of a configuration (see :func:`state_location`)."""
    return open_store(state_location(config))


def open_target(
    options: GlobalOptions,
    config: ReconcilerConfig,
    name: str | None,
    on_answer: AnswerObserver | None = None,
) -> Session:
    """The session of target ``name`` (None: flags and environment only)."""
    target = resolve_target(options, name, config=config)
    credentials = credentials_from_env(prefix=target.credentials_env_prefix)
    session = Session(config, target, credentials, on_answer)
    opened = _opened.get()
    if opened is not None:
        opened.append(session)
    return session


def open_session(options: GlobalOptions) -> Session:
    """The session of a one-target command (import): each problem is a one-line error."""
    if len(options.targets) > 1:
        raise ConfigError("this command works on one target: pass a single --target")
    return open_target(options, load_config(config_path(options)), None)


@contextlib.contextmanager
def sessions_opened() -> Iterator[list[Session]]:
    """Every session the runs inside the block open, in order: the caller reports their retries
    when the block ends, whatever its outcome."""
    opened: list[Session] = []
    token = _opened.set(opened)
    try:
        yield opened
    finally:
        _opened.reset(token)
