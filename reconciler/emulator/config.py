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


PUT_FAULT_STATUSES = (429, 500, 502, 503, 504)
LOST_ANSWER_MODES = ("drop", "delay", "gateway")


@dataclass(frozen=True)
class PutFault:
    """PUTs to ``asset_id`` (any asset when None) answered ``status`` ``times`` times, before they
    reach the service: nothing is stored.

    429 is the gateway's throttling answer (``APIG.0308`` with ``Retry-After: retry_after``);
    a 5xx carries the service's error body, or none at all when ``empty`` (a proxy's answer,
    which says nothing about whether the request was refused)."""

    status: int
    times: int = 1
    asset_id: str | None = None
    retry_after: float | None = None
    empty: bool = False

    def __post_init__(self) -> None:
        if self.status not in PUT_FAULT_STATUSES:
            raise ConfigError(
                f"put fault status must be one of {', '.join(map(str, PUT_FAULT_STATUSES))}, "
                f"got {self.status}"
            )
        if self.times < 1:
            raise ConfigError(f"put fault times must be at least 1, got {self.times}")
        if self.retry_after is not None and not 0 <= self.retry_after < 86400:
            raise ConfigError(f"put fault Retry-After must be 0 to 86400 s, got {self.retry_after}")


@dataclass(frozen=True)
class LostAnswer:
    """PUTs to ``asset_id`` (any asset when None) that the service applies, ``times`` times,
    and whose answer is then lost: ``drop`` closes the connection without an answer, ``delay``
    answers only after ``seconds`` (past a client's timeout), ``gateway`` answers 504 with no
    body, as a gateway that gave up waiting for the service does."""

    mode: str = "drop"
    times: int = 1
    asset_id: str | None = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in LOST_ANSWER_MODES:
            raise ConfigError(
                f"lost answer mode must be one of {', '.join(LOST_ANSWER_MODES)}, got {self.mode!r}"
            )
        if self.times < 1:
            raise ConfigError(f"lost answer times must be at least 1, got {self.times}")
        if not 0 <= self.seconds < 3600:
            raise ConfigError(f"lost answer delay must be 0 to 3600 s, got {self.seconds}")


@dataclass(frozen=True)
class TimedEdit:
    """An out-of-band edit of ``asset_id`` made ``delay`` seconds after the first request that
    ``method`` sends to ``after`` (an asset id; the collection when None) has been answered:
    someone in the console, while a client waits out a back-off."""

    asset_id: str
    changes: Mapping[str, object]
    after: str | None = None
    method: str = "PUT"
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in ("GET", "PUT"):
            raise ConfigError(f"timed edit method must be GET or PUT, got {self.method!r}")
        if not 0 <= self.delay < 3600:
            raise ConfigError(f"timed edit delay must be 0 to 3600 s, got {self.delay}")


@dataclass(frozen=True)
class ListMutation:
    """An asset deleted (``delete``: its id) or created (``create``: its record) while the
    project is being paged: once, when the page at ``offset`` of the whole project (a list
    without ``asset_id``) is asked for, before it is read.

    A deletion before ``offset`` moves the asset at the top of that page onto the page before,
    which was already read, so no page holds it; a creation sorted before ``offset`` shows one
    asset twice and the new one on no page."""

    offset: int
    delete: str | None = None
    create: Mapping[str, object] | None = None

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise ConfigError(f"list mutation offset must be 0 or more, got {self.offset}")
        if (self.delete is None) == (self.create is None):
            raise ConfigError("a list mutation deletes one asset or creates one, not both")
        if self.delete is not None and not self.delete:
            raise ConfigError("a list mutation needs the id of the asset to delete")
        if self.create is not None and not (
            isinstance(self.create.get("asset_id"), str) and self.create["asset_id"]
        ):
            raise ConfigError("the asset a list mutation creates needs an asset_id string")


@dataclass
class Behaviour:
    """How the service answers where the reference allows more than one reading.

    * ``list_omit``: dotted paths left out of ListAssets rows (summary rows); ShowAsset still
      returns them.
    * ``put_answer``: ``full`` (the updated asset), ``short`` (the few top-level fields of the
      reference's example), ``stale`` (the asset as it was before the update).
    * ``edits_on_put``: out-of-band edits triggered by PUTs.
    * ``put_faults``: PUTs answered 429 or 5xx before they reach the service.
    * ``lost_answers``: PUTs applied whose answer is dropped, delayed or replaced by a 504.
    * ``timed_edits``: out-of-band edits made a while after a given request.
    * ``count_offset``: added to the ``count`` of every list answer (never below 0): a count
      lower or higher than the rows.
    * ``list_mutations``: assets deleted or created while the project is being paged.
    * ``ignore_sort_key``: list in the default order (``create_time``) whatever ``sort_key``
      says, as a service that does not implement it might (``sort_dir`` still applies).
    """

    list_omit: tuple[str, ...] = ()
    put_answer: str = "full"
    edits_on_put: list[EditOnPut] = field(default_factory=list)
    put_faults: list[PutFault] = field(default_factory=list)
    lost_answers: list[LostAnswer] = field(default_factory=list)
    timed_edits: list[TimedEdit] = field(default_factory=list)
    count_offset: int = 0
    list_mutations: list[ListMutation] = field(default_factory=list)
    ignore_sort_key: bool = False

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


def parse_delete_on_list(text: str) -> ListMutation:
    """``OFFSET:ASSET_ID``: delete the asset when the page at OFFSET is asked for."""
    offset, sep, asset_id = text.partition(":")
    if not sep or not offset.strip().isdigit() or not asset_id.strip():
        raise ConfigError(f"--delete-on-list {text!r}: expected OFFSET:ASSET_ID")
    return ListMutation(int(offset), delete=asset_id.strip())


def parse_create_on_list(text: str) -> ListMutation:
    """``OFFSET:JSON``: create the asset (a JSON record with an ``asset_id``) when the page at
    OFFSET is asked for."""
    import json

    offset, sep, record = text.partition(":")
    if not sep or not offset.strip().isdigit():
        raise ConfigError(f"--create-on-list {text!r}: expected OFFSET:JSON_RECORD")
    try:
        created = json.loads(record)
    except ValueError:
        raise ConfigError(f"--create-on-list {text!r}: the record is not JSON") from None
    if not isinstance(created, dict):
        raise ConfigError(f"--create-on-list {text!r}: the record must be a JSON object")
    return ListMutation(int(offset), create=created)


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


def _spec(option: str, text: str, head: str) -> tuple[str | None, dict[str, str]]:
    """``[ASSET_ID:]KEY=VALUE[,KEY=VALUE...]`` -> (asset id or None, the pairs)."""
    head_part, sep, tail = text.partition(":")
    target, rest = (head_part, tail) if sep and "=" not in head_part else ("", text)
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"{option} {text!r}: {item!r} is not KEY=VALUE ({head})")
        pairs[key.strip()] = value.strip()
    return target.strip() or None, pairs


def _number(option: str, text: str, key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: {key} must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(f"{option} {text!r}: {key} must be a finite number")
    return number


def parse_put_fault(text: str) -> PutFault:
    """``[ASSET_ID:]status=429,times=2,retry_after=5[,empty=1]``."""
    option, head = "--put-fault", "status=N[,times=N][,retry_after=S][,empty=1]"
    asset_id, pairs = _spec(option, text, head)
    unknown = set(pairs) - {"status", "times", "retry_after", "empty"}
    if unknown or "status" not in pairs:
        raise ConfigError(f"{option} {text!r}: expected [ASSET_ID:]{head}")
    retry_after = pairs.get("retry_after")
    return PutFault(
        status=int(_number(option, text, "status", pairs["status"])),
        times=int(_number(option, text, "times", pairs.get("times", "1"))),
        asset_id=asset_id,
        retry_after=None
        if retry_after is None
        else _number(option, text, "retry_after", retry_after),
        empty=pairs.get("empty", "0") not in ("0", "false", ""),
    )


def parse_lost_answer(text: str) -> LostAnswer:
    """``[ASSET_ID:]mode=drop|delay|gateway[,times=N][,seconds=S]``."""
    option, head = "--lose-put-answer", "mode=drop|delay|gateway[,times=N][,seconds=S]"
    asset_id, pairs = _spec(option, text, head)
    if set(pairs) - {"mode", "times", "seconds"}:
        raise ConfigError(f"{option} {text!r}: expected [ASSET_ID:]{head}")
    return LostAnswer(
        mode=pairs.get("mode", "drop"),
        times=int(_number(option, text, "times", pairs.get("times", "1"))),
        asset_id=asset_id,
        seconds=_number(option, text, "seconds", pairs.get("seconds", "0")),
    )


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
