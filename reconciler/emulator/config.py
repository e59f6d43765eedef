"""Settings of one emulator instance: credentials, rate limits and injected faults.

Credentials default to the environment variables the client reads, so one environment drives
both sides.  Secrets are kept out of ``repr`` so that a config never leaks into a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import ConfigError

# Published per-tenant limits of cn-north-4 (requests per second); "show" is assumed equal to list.
DEFAULT_RATE_LIMITS: dict[str, float] = {"list": 20.0, "show": 20.0, "update": 10.0}
API_NAMES = ("list", "show", "update")
CLOCK_SKEW_SECONDS = 15 * 60


def _first(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


@dataclass
class Faults:
    """Injected latency and failures; the running server reads them on every request."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fail_rate: float = 0.0
    drop_rate: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ConfigError("latency and jitter must be zero or positive milliseconds")
        for name in ("fail_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name.replace('_', '-')} must be between 0 and 1, got {value}")


PUT_ANSWERS = ("full", "short", "stale")
# The fields of the reference's own example answer to Update Asset: a few top-level fields.
SHORT_ANSWER_FIELDS = (
    "asset_id",
    "asset_name",
    "asset_description",
    "create_time",
    "asset_type",
    "asset_state",
    "files",
)


@dataclass(frozen=True)
class EditOnPut:
    """An out-of-band edit (someone in the console) made right after a PUT is stored.

    ``changes`` maps dotted paths (``asset_extra_meta.human_model_2d_meta.model_version``) to
    new values.  It fires once, after the first successful PUT to ``after`` (any asset when
    None), before that PUT is answered, so the edit lands while an apply is running.
    """

    asset_id: str
    changes: Mapping[str, object]
    after: str | None = None


@dataclass
class Behaviour:
    """How the service answers where the reference allows more than one reading.

    * ``list_omit``: dotted paths left out of ListAssets rows (summary rows); ShowAsset still
      returns them.
    * ``put_answer``: ``full`` (the updated asset), ``short`` (the few top-level fields of the
      reference's example), ``stale`` (the asset as it was before the update).
    * ``edits_on_put``: out-of-band edits triggered by PUTs.
    """

    list_omit: tuple[str, ...] = ()
    put_answer: str = "full"
    edits_on_put: list[EditOnPut] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.put_answer not in PUT_ANSWERS:
            raise ConfigError(
                f"put answer must be one of {', '.join(PUT_ANSWERS)}, got {self.put_answer!r}"
            )
        for path in self.list_omit:
            if not path or any(not part for part in path.split(".")):
                raise ConfigError(f"--list-omit: {path!r} is not a field path")


def parse_list_omit(text: str) -> tuple[str, ...]:
    """``asset_extra_meta,system_properties`` -> the paths (blank items ignored)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_edit_on_put(text: str) -> EditOnPut:
    """``[AFTER_ID>]ASSET_ID:PATH=JSON[,PATH=JSON...]`` (a value that is not JSON is a string)."""
    import json

    head, sep, assignments = text.partition(":")
    if not sep or not head or not assignments:
        raise ConfigError(
            f"--edit-on-put {text!r}: expected [AFTER_ID>]ASSET_ID:PATH=VALUE[,PATH=VALUE...]"
        )
    after, arrow, asset_id = head.rpartition(">")
    changes: dict[str, object] = {}
    for item in assignments.split(","):
        path, eq, raw = item.partition("=")
        if not eq or not path.strip():
            raise ConfigError(f"--edit-on-put {text!r}: {item!r} is not PATH=VALUE")
        try:
            value: object = json.loads(raw)
        except ValueError:
            value = raw
        changes[path.strip()] = value
    return EditOnPut(asset_id.strip(), changes, after.strip() if arrow else None)


@dataclass
class EmulatorConfig:
    """Everything an emulator instance needs besides its storage."""

    project_id: str = "p-emulator"
    ak: str | None = None
    sk: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    rate_limits: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    faults: Faults = field(default_factory=Faults)
    record_path: Path | None = None
    clock_skew_seconds: int = CLOCK_SKEW_SECONDS
    random_seed: int | None = None
    behaviour: Behaviour = field(default_factory=Behaviour)

    def __post_init__(self) -> None:
        if not self.project_id:
            raise ConfigError("the emulator needs a project id (--project-id or HW_PROJECT_ID)")
        if (self.ak is None) != (self.sk is None):
            raise ConfigError("give both an AK and an SK, or neither")
        if self.ak is None and self.token is None:
            raise ConfigError(
                "the emulator needs credentials to accept: --ak/--sk (or HUAWEICLOUD_SDK_AK/"
                "HUAWEICLOUD_SDK_SK) and/or --token (or HW_AUTH_TOKEN)"
            )
        self.rate_limits = check_rate_limits(self.rate_limits)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> EmulatorConfig:
        """Credentials from the client's environment variables; non-None ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "ak": _first(env, "HUAWEICLOUD_SDK_AK", "HW_ACCESS_KEY"),
            "sk": _first(env, "HUAWEICLOUD_SDK_SK", "HW_SECRET_KEY"),
            "security_token": _first(env, "HUAWEICLOUD_SDK_SECURITY_TOKEN", "HW_SECURITY_TOKEN"),
            "token": _first(env, "HW_AUTH_TOKEN"),
            "project_id": _first(env, "HUAWEICLOUD_SDK_PROJECT_ID", "HW_PROJECT_ID"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("project_id") is None:
            values["project_id"] = ""
        return cls(**values)  # type: ignore[arg-type]


def check_rate_limits(limits: Mapping[str, float]) -> dict[str, float]:
    """Validated copy of a rate-limit map; a rate of 0 means unlimited."""
    result: dict[str, float] = {}
    for name, rate in limits.items():
        if name not in API_NAMES:
            raise ConfigError(f"unknown API {name!r} in rate limits; use {', '.join(API_NAMES)}")
        if rate < 0:
            raise ConfigError(f"rate limit for {name} must be zero (unlimited) or positive")
        result[name] = float(rate)
    return result


def parse_rate_limits(text: str) -> dict[str, float]:
    """Parse ``list=20,show=20,update=10`` (APIs left out keep their defaults)."""
    limits = dict(DEFAULT_RATE_LIMITS)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"rate limit {item!r} is not NAME=RATE (e.g. list=20)")
        try:
            limits[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"rate limit {item!r}: {value!r} is not a number") from None
    return check_rate_limits(limits)
