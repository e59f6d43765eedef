"""Targets: which MetaStudio endpoint and project a run talks to, and how fast.

A target combines, in order of precedence, command-line flags, ``reconciler.yaml`` and the
environment.  The file never holds credentials (they belong in the environment or a secret store,
not in git), so credential-looking keys in it are an error.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from reconciler.api.answers import DEFAULT_MAX_RESPONSE_MB
from reconciler.api.rules import IgnoreRule, PolicyRule, RuleError, parse_ignore, parse_policies
from reconciler.errors import ConfigError
from reconciler.fieldpath import format_path
from reconciler.yaml_safe import Document, YamlProblem, parse_documents, read_text

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("reconciler.yaml")
ENDPOINT_PATTERN = "https://metastudio.{region}.myhuaweicloud.com"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 5
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_ENV_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_CONFIG_BYTES = 1024 * 1024
MAX_TIMEOUT = 3600.0
MAX_RATE = 10_000.0
MAX_RESPONSE_MB = 1024.0
# Huawei Cloud region names: cn-north-4, ap-southeast-3, eu-west-101, la-north-2 ...
NON_FINITE = "is not a finite number"  # the YAML reader's words for .nan, .inf, 1e999
REGION_RE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,3}")


@dataclass(frozen=True)
class RateLimits:
    """Requests per second allowed per API (per tenant); ``0`` means unpaced."""

    list: float
    show: float
    update: float

    def for_api(self, api: str) -> float:
        return float(getattr(self, api))


# The service's published per-tenant flow control (facts file, section 6). The show API's row was
# not published; it is assumed to match the list API's.
REGION_RATE_LIMITS: dict[str, RateLimits] = {
    "cn-north-4": RateLimits(list=20, show=20, update=10),
    "cn-east-3": RateLimits(list=10, show=10, update=5),
    "ap-southeast-3": RateLimits(list=10, show=10, update=5),
}
CONSERVATIVE_LIMITS = RateLimits(list=10, show=10, update=5)

_TARGET_KEYS = {
    "region",
    "project_id",
    "endpoint",
    "verify_tls",
    "rate_limits",
    "timeout",
    "max_retries",
    "max_response_mb",
    "credentials_env_prefix",
    "safety",
    "ignore",
    "policies",
}
_TOP_KEYS = {"default_target", "state", "targets", "safety", "ignore", "policies"}
_SAFETY_KEYS = ("max_change_percent", "min_assets")
_CREDENTIAL_KEYS = {
    "ak",
    "sk",
    "access_key",
    "secret_key",
    "security_token",
    "token",
    "auth_token",
    "password",
}


@dataclass(frozen=True)
class Target:
    """Everything the client needs to reach one MetaStudio project, except the credentials."""

    name: str
    region: str | None
    project_id: str
    endpoint: str
    verify_tls: bool = True
    rate_limits: RateLimits = field(default_factory=lambda: REGION_RATE_LIMITS["cn-north-4"])
    timeout: float = DEFAULT_TIMEOUT  # the total deadline of one request attempt
    max_retries: int = DEFAULT_MAX_RETRIES
    max_response_mb: float = DEFAULT_MAX_RESPONSE_MB
    # Put before every credential variable name (``PROD_`` reads ``PROD_HUAWEICLOUD_SDK_AK``...).
    credentials_env_prefix: str = ""


@dataclass(frozen=True)
class ReconcilerConfig:
    """The parsed ``reconciler.yaml``; target entries are kept raw until resolved."""

    path: Path | None = None
    default_target: str | None = None
    # A path (relative ones are relative to the file's folder) or a ``postgresql://`` URL.
    state: Path | str | None = None
    targets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    safety: Mapping[str, float] = field(default_factory=dict)  # checked; see safety_settings
    # Ignore and policy rules (docs/ownership.md, docs/policies.md): the file's, and each
    # target's own (added to the file's for that target).
    ignore: tuple[IgnoreRule, ...] = ()
    policies: tuple[PolicyRule, ...] = ()
    target_ignore: Mapping[str, tuple[IgnoreRule, ...]] = field(default_factory=dict)
    target_policies: Mapping[str, tuple[PolicyRule, ...]] = field(default_factory=dict)

    def ignore_rules(self, target_name: str | None) -> tuple[IgnoreRule, ...]:
        """The file's ignore rules, then the target's own."""
        return self.ignore + self.target_ignore.get(target_name or "", ())

    def policy_rules(self, target_name: str | None) -> tuple[PolicyRule, ...]:
        """The file's policy rules, then the target's own."""
        return self.policies + self.target_policies.get(target_name or "", ())

    def safety_settings(self, target_name: str | None) -> dict[str, float]:
        """``safety:`` of the file, overridden key by key by the target's own ``safety:``."""
        own = self.targets.get(target_name or "", {}).get("safety") or {}
        return {**self.safety, **own}

    @property
    def implicit_target(self) -> str | None:
        """The target of a manifest without ``metadata.target``: ``default_target``, else the
        only target the file defines, else none (the flags and the environment decide)."""
        if self.default_target is not None:
            return self.default_target
        return next(iter(self.targets)) if len(self.targets) == 1 else None


def is_database_url(location: str) -> bool:
    """Whether a ``state:`` value names a PostgreSQL database rather than a file."""
    return location.startswith(("postgresql://", "postgres://"))


CONNECTION_STRING_REFUSED = (
    "a key=value connection string is not supported: write the database as a postgresql:// "
    "URL (postgresql://user@host:5432/dbname), or give a file path"
)


def looks_like_connection_string(location: str) -> bool:
    """A libpq ``key=value`` string (``host=db dbname=x``): refused rather than taken for a
    file name."""
    return re.match(r"\s*[A-Za-z_]+\s*=", location) is not None


def url_passwords(url: str) -> list[str]:
    """The passwords a database URL carries, as written (possibly empty, possibly
    percent-encoded): its user part's, and ``password`` / ``sslpassword`` in its query.  One
    reading for the config's refusal, the log redaction and the state's own messages."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password is not None else []
    query = parse_qsl(parts.query, keep_blank_values=True)
    return found + [value for key, value in query if key.lower() in ("password", "sslpassword")]


def _has_password(url: str) -> bool:
    """Whether a database URL carries a password (in its user part or its query)."""
    return bool(url_passwords(url))


def _fail(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {problem}")


def config_path(options: TargetFlags) -> Path | None:
    """``--config`` (must exist), else ``./reconciler.yaml`` when present, else none."""
    if options.config is not None:
        if not options.config.is_file():
            raise ConfigError(f"config file {options.config} not found (from --config)")
        return options.config
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_config(path: Path | None) -> ReconcilerConfig:
    """Parse and check ``reconciler.yaml``; ``None`` gives an empty configuration."""
    if path is None:
        return ReconcilerConfig()
    data = _read_settings(path)
    if data is None:
        return ReconcilerConfig(path=path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    _reject_credentials(path, data, "")
    for key in data:
        if key not in _TOP_KEYS:
            raise _fail(path, str(key), f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    targets = data.get("targets") or {}
    if not isinstance(targets, dict):
        raise _fail(path, "targets", "expected a mapping of target name to settings")
    for name, settings in targets.items():
        _check_target(path, str(name), settings)
    default = data.get("default_target")
    if default is not None and (not isinstance(default, str) or default not in targets):
        known = ", ".join(sorted(map(str, targets))) or "none defined"
        raise _fail(path, "default_target", f"no target named {default!r} (targets: {known})")
    state = data.get("state")
    if state is not None and not isinstance(state, str):
        raise _fail(path, "state", "expected a file path or a postgresql:// URL")
    if state and looks_like_connection_string(state):
        raise _fail(path, "state", CONNECTION_STRING_REFUSED)
    if state and is_database_url(state) and _has_password(state):
        raise _fail(
            path,
            "state",
            "a database URL in the config file must not hold a password (the file belongs in "
            "git); pass the whole URL in the RECONCILER_STATE environment variable from a "
            "secret, or keep the password in PGPASSWORD or a .pgpass file",
        )
    _check_safety(path, "safety", data.get("safety"))
    rules = _rules(path, data, targets)
    return ReconcilerConfig(
        path=path,
        default_target=default,
        state=(state if is_database_url(state) else path.parent / state) if state else None,
        targets={str(k): (v or {}) for k, v in targets.items()},
        safety=dict(data.get("safety") or {}),
        **rules,
    )


def _rules(path: Path, data: Mapping[str, Any], targets: Mapping[Any, Any]) -> dict[str, Any]:
    """``ignore:`` and ``policies:`` of the file and of each target, parsed and checked (a
    target's rule may not reuse a name of the file's: a violation names its rule)."""
    try:
        ignore = parse_ignore(data.get("ignore"))
        policies = parse_policies(data.get("policies"))
        target_ignore: dict[str, tuple[IgnoreRule, ...]] = {}
        target_policies: dict[str, tuple[PolicyRule, ...]] = {}
        for name, settings in targets.items():
            where = f"targets.{name}"
            own = settings or {}
            target_ignore[str(name)] = parse_ignore(own.get("ignore"), f"{where}.ignore")
            target_policies[str(name)] = parse_policies(own.get("policies"), f"{where}.policies")
            for key, mine, shared in (
                ("ignore", target_ignore[str(name)], ignore),
                ("policies", target_policies[str(name)], policies),
            ):
                taken = {rule.name for rule in shared} & {rule.name for rule in mine}
                if taken:
                    raise RuleError(
                        f"{where}.{key}: {sorted(taken)[0]!r} is already the name of a rule "
                        f"of the file's {key}"
                    )
    except RuleError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return {
        "ignore": ignore,
        "policies": policies,
        "target_ignore": target_ignore,
        "target_policies": target_policies,
    }


def _read_settings(path: Path) -> Any:
    """The one YAML document of ``reconciler.yaml``, read with the manifests' safety rules
    (size and depth bounded, aliases and unknown tags refused, duplicate keys and non-finite
    numbers reported with their position)."""
    kind = "settings file"
    try:
        text = read_text(path, MAX_CONFIG_BYTES, kind=kind)
    except YamlProblem as exc:
        raise ConfigError(f"{_at(path, exc)}: {exc.message}") from None
    documents, problems = parse_documents(text, kind=kind)
    lines = [f"{_at(path, p)}: {p.message}" for p in problems]
    lines += [f"{_at(path, p)}: {_keyed(d, p)}" for d in documents for p in d.problems]
    if lines:
        raise ConfigError("\n".join(lines))
    present = [d for d in documents if d.data is not None]
    if len(present) > 1:
        raise ConfigError(
            f"{path}:{present[1].line}:{present[1].column}: a settings file holds one YAML "
            "document (found a second one)"
        )
    return present[0].data if present else None


def _keyed(document: Document, problem: YamlProblem) -> str:
    """A non-finite number's message led by the setting it is about (``targets.prod.timeout:
    .nan is not a finite number``): the key or list item written last before the value."""
    finite = problem.message.endswith(NON_FINITE)
    if not finite or problem.path or problem.line is None or problem.column is None:
        return problem.message
    at = (problem.line, problem.column)
    before = [(position, key) for key, position in document.positions.items() if position <= at]
    if not before:
        return problem.message
    return f"{format_path(max(before)[1])}: {problem.message}"


def _at(path: Path, problem: YamlProblem) -> str:
    return f"{path}:{problem.line}:{problem.column or 1}" if problem.line else str(path)


def _check_safety(path: Path, where: str, value: Any) -> None:
    """``safety: {max_change_percent: 0-100, min_assets: whole number >= 0}``."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise _fail(path, where, "expected a mapping like {max_change_percent: 30, min_assets: 11}")
    for key, setting in value.items():
        key_path = f"{where}.{key}"
        if key not in _SAFETY_KEYS:
            raise _fail(path, key_path, f"unknown key (allowed: {', '.join(_SAFETY_KEYS)})")
        number = isinstance(setting, int | float) and not isinstance(setting, bool)
        if key == "max_change_percent" and not (number and 0 <= setting <= 100):
            raise _fail(path, key_path, "expected a percentage from 0 to 100")
        if key == "min_assets" and not (number and isinstance(setting, int) and setting >= 0):
            raise _fail(path, key_path, "expected a whole number of assets, 0 or more")


def _reject_credentials(path: Path, node: Any, prefix: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{prefix}{key}"
            if str(key).lower() in _CREDENTIAL_KEYS:
                raise _fail(
                    path,
                    where,
                    "credentials are not allowed in the config file; set HUAWEICLOUD_SDK_AK and "
                    "HUAWEICLOUD_SDK_SK (or HW_AUTH_TOKEN) in the environment",
                )
            _reject_credentials(path, value, where + ".")


def _check_target(path: Path, name: str, settings: Any) -> None:
    where = f"targets.{name}"
    if settings is None:
        return
    if not isinstance(settings, dict):
        raise _fail(path, where, "expected a mapping of settings")
    for key, value in settings.items():
        key_path = f"{where}.{key}"
        if key not in _TARGET_KEYS:
            allowed = ", ".join(sorted(_TARGET_KEYS))
            raise _fail(path, key_path, f"unknown key (allowed: {allowed})")
        _check_target_value(path, key_path, key, value)


def _check_target_value(path: Path, key_path: str, key: str, value: Any) -> None:
    """One known key of a target: its value's type and range."""
    if key in ("region", "project_id", "endpoint") and not (
        isinstance(value, str) and value.strip()
    ):
        raise _fail(path, key_path, "expected a non-empty string")
    if key == "verify_tls" and not isinstance(value, bool):
        raise _fail(path, key_path, "expected true or false")
    if key == "timeout" and not _positive_number(value, MAX_TIMEOUT):
        raise _fail(
            path, key_path, f"expected a number of seconds above 0, at most {MAX_TIMEOUT:g}"
        )
    if key == "max_response_mb" and not _positive_number(value, MAX_RESPONSE_MB):
        raise _fail(path, key_path, f"expected a size in MiB above 0, at most {MAX_RESPONSE_MB:g}")
    if key == "max_retries" and not (
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 20
    ):
        raise _fail(path, key_path, "expected a whole number from 0 to 20")
    if key == "endpoint":
        _check_endpoint(value, f"{path}: {key_path}")
    if key == "credentials_env_prefix" and not (
        isinstance(value, str) and _ENV_PREFIX.fullmatch(value)
    ):
        raise _fail(
            path, key_path, "expected the start of an environment variable name, e.g. PROD_"
        )
    if key == "safety":
        _check_safety(path, key_path, value)
    if key == "rate_limits":
        _check_rate_limits(path, key_path, value)
    if key == "region":
        _check_region(value, f"{path}: {key_path}")
    if key == "project_id":
        check_printable(value, f"{path}: {key_path}", "project id")


def _check_rate_limits(path: Path, key_path: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise _fail(path, key_path, "expected a mapping like {list: 20, show: 20, update: 10}")
    for api, rate in value.items():
        if api not in ("list", "show", "update"):
            raise _fail(path, f"{key_path}.{api}", "unknown API (allowed: list, show, update)")
        if not (_positive_number(rate, MAX_RATE) or (_number(rate) and rate == 0)):
            raise _fail(
                path,
                f"{key_path}.{api}",
                f"expected requests per second, at most {MAX_RATE:g} (0 = unpaced)",
            )


def _number(value: Any) -> bool:
    """A finite int or float (YAML's ``.inf`` and ``.nan`` are floats, booleans are ints)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _positive_number(value: Any, maximum: float) -> bool:
    return _number(value) and 0 < value <= maximum


def check_printable(value: str, origin: str, what: str) -> str:
    """Refuse control, non-ASCII and space characters (the value travels in HTTP headers and
    output lines); the message names where the value came from, not the value."""
    for index, char in enumerate(value):
        if not ("!" <= char <= "~"):
            kind = (
                "a control character"
                if char.isascii() and not char.isprintable()
                else "a space"
                if char.isspace()
                else "a non-ASCII character"
            )
            raise ConfigError(
                f"{origin}: the {what} contains {kind} (at character {index + 1}); only "
                "printable ASCII is allowed"
            )
    return value


def _check_region(value: str, origin: str) -> str:
    """``value`` if it is a region name; else an error that shows it as given (a URL or host
    is told where it belongs: the endpoint)."""
    if REGION_RE.fullmatch(value):
        return value
    if not (value.isascii() and value.isprintable()) or any(c.isspace() for c in value):
        raise ConfigError(
            f"{origin}: not a region name (it holds spaces, control or non-ASCII characters); "
            "expected one like cn-north-4"
        )
    shown = value if len(value) <= 120 else value[:117] + "..."
    if "://" in value or "." in value or "/" in value or ":" in value:
        raise ConfigError(
            f"{origin}: {shown} is a host or URL, not a region name; give it as the endpoint "
            "(--endpoint, or endpoint: in reconciler.yaml), or give a region like cn-north-4"
        )
    raise ConfigError(f"{origin}: {shown} is not a region name; expected one like cn-north-4")


def _check_endpoint(url: str, origin: str) -> str:
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        raise ConfigError(
            f"{origin}: the endpoint contains spaces, control or non-ASCII characters; expected "
            "a URL like https://metastudio.cn-north-4.myhuaweicloud.com"
        )
    parts = urlsplit(url)
    if "@" in parts.netloc:
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        raise ConfigError(
            f"{origin}: the endpoint {shown!r} must not hold a user name or password "
            "(user:password@); credentials come from the environment only"
        )
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ConfigError(f"{origin}: endpoint {url!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{origin}: endpoint {url!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"{origin}: endpoint {url!r} must not have a query or fragment")
    return url.rstrip("/")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class TargetFlags(Protocol):
    """The command-line choices that select a target (``reconciler.options.GlobalOptions``)."""

    @property
    def config(self) -> Path | None: ...
    @property
    def target(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...
    @property
    def project_id(self) -> str | None: ...
    @property
    def endpoint(self) -> str | None: ...


@dataclass(frozen=True)
class _Chosen:
    """The target entry a run uses: its name, raw settings, and how messages name its place."""

    name: str | None
    settings: Mapping[str, Any]
    key: str  # e.g. ``targets.prod``
    origin: str  # the config file, for messages


def resolve_target(
    options: TargetFlags,
    target_name: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config: ReconcilerConfig | None = None,
) -> Target:
    """The target to use: flags over ``reconciler.yaml`` over the environment.

    ``target_name`` (e.g. a manifest's ``metadata.target``) wins over ``--target``, which wins
    over ``default_target`` and over the only target when the file defines exactly one.
    """
    env = os.environ if env is None else env
    if config is None:
        config = load_config(config_path(options))
    chosen = _choose(config, target_name or options.target)
    region, region_origin = _first(
        (options.region, "--region"),
        (chosen.settings.get("region"), f"{chosen.origin}: {chosen.key}.region"),
        (_env(env, "HW_REGION_NAME"), "HW_REGION_NAME"),
    )
    if region is not None:
        _check_region(region, region_origin)
    project_id = _project_id(options.project_id, chosen, env)
    endpoint = _endpoint(options.endpoint, chosen, region, env)
    if options.region and not options.endpoint and chosen.settings.get("endpoint"):
        _warn_once(
            f"--region {options.region} does not choose the endpoint of target "
            f"{chosen.name or 'default'}: {chosen.key}.endpoint in {chosen.origin} gives "
            f"{endpoint}, and requests go there (the region still sets the rate limits)"
        )
    return Target(
        name=chosen.name or "default",
        region=region,
        project_id=project_id,
        endpoint=endpoint,
        verify_tls=_verify_tls(chosen.settings, endpoint, env),
        rate_limits=_rate_limits(region, chosen.settings.get("rate_limits") or {}),
        timeout=float(chosen.settings.get("timeout", DEFAULT_TIMEOUT)),
        max_retries=_max_retries(chosen.settings, env),
        max_response_mb=float(chosen.settings.get("max_response_mb", DEFAULT_MAX_RESPONSE_MB)),
        credentials_env_prefix=_prefix(chosen),
    )


_warned: set[str] = set()  # warnings already given in this process


def _warn_once(message: str) -> None:
    """A warning about the configuration, once per run however often targets are resolved."""
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def _first(*candidates: tuple[str | None, str]) -> tuple[str | None, str]:
    """The first set value and where it came from."""
    for value, origin in candidates:
        if value:
            return value, origin
    return None, ""


def _choose(config: ReconcilerConfig, wanted: str | None) -> _Chosen:
    name = wanted or config.default_target
    if name is None and len(config.targets) == 1:
        name = next(iter(config.targets))
    origin = str(config.path) if config.path else "reconciler.yaml"
    if name is not None and name not in config.targets:
        if config.path is None:
            raise ConfigError(f"target {name!r} needs a reconciler.yaml defining it (none found)")
        known = ", ".join(sorted(config.targets)) or "none defined"
        raise ConfigError(f"{origin}: targets: no target named {name!r} (targets: {known})")
    settings: Mapping[str, Any] = config.targets.get(name, {}) if name else {}
    return _Chosen(name, settings, f"targets.{name}" if name else "targets", origin)


def _prefix(chosen: _Chosen) -> str:
    return str(chosen.settings.get("credentials_env_prefix", ""))


def _project_id(flag: str | None, chosen: _Chosen, env: Mapping[str, str]) -> str:
    prefix = _prefix(chosen)
    project_id, origin = _first(
        (flag, "--project-id"),
        (chosen.settings.get("project_id"), f"{chosen.origin}: {chosen.key}.project_id"),
        *(
            (_env(env, prefix + name), prefix + name)
            for name in ("HUAWEICLOUD_SDK_PROJECT_ID", "HW_PROJECT_ID")
        ),
    )
    if not project_id:
        raise ConfigError(
            f"no project id: pass --project-id or set {prefix}HUAWEICLOUD_SDK_PROJECT_ID "
            f"(or project_id under {chosen.key} in {chosen.origin})"
        )
    return check_printable(str(project_id), origin, "project id")


def _endpoint(flag: str | None, chosen: _Chosen, region: str | None, env: Mapping[str, str]) -> str:
    if flag:
        endpoint = _check_endpoint(flag, "--endpoint")
    elif chosen.settings.get("endpoint"):
        endpoint = _check_endpoint(
            chosen.settings["endpoint"], f"{chosen.origin}: {chosen.key}.endpoint"
        )
    elif region:
        endpoint = _endpoint_for_region(region, env)
    else:
        raise ConfigError(
            "no region: pass --region or --endpoint, set HW_REGION_NAME, "
            f"or set region under {chosen.key} in {chosen.origin}"
        )
    host = urlsplit(endpoint).hostname or ""
    if endpoint.startswith("http:") and host not in LOOPBACK_HOSTS:
        log.warning("endpoint %s is plain HTTP: requests are not encrypted", endpoint)
    return endpoint


def _verify_tls(settings: Mapping[str, Any], endpoint: str, env: Mapping[str, str]) -> bool:
    verify_tls = bool(settings.get("verify_tls", True)) and not _truthy(env.get("HW_INSECURE"))
    if not verify_tls and endpoint.startswith("https:"):
        log.warning("TLS certificate verification is OFF for %s", endpoint)
    return verify_tls


def _max_retries(settings: Mapping[str, Any], env: Mapping[str, str]) -> int:
    max_retries = settings.get("max_retries")
    if max_retries is None:
        return _env_int(env, "HW_MAX_RETRIES", DEFAULT_MAX_RETRIES)
    return int(max_retries)


def _env(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _env(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not 0 <= value <= 20:
        raise ConfigError(f"{name}={raw!r} must be from 0 to 20")
    return value


def _endpoint_for_region(region: str, env: Mapping[str, str]) -> str:
    """The SDK's per-region override variable if set, else the documented host pattern."""
    override = _env(env, "HUAWEICLOUD_SDK_REGION_METASTUDIO_" + region.upper().replace("-", "_"))
    if override:
        first = override.split(",")[0].strip()
        return _check_endpoint(first, "HUAWEICLOUD_SDK_REGION_METASTUDIO_*")
    if region not in REGION_RATE_LIMITS:
        _warn_once(
            f"region {region} is not one MetaStudio is documented in "
            f"({', '.join(REGION_RATE_LIMITS)}); using {ENDPOINT_PATTERN.format(region=region)}"
        )
    return ENDPOINT_PATTERN.format(region=region)


def _rate_limits(region: str | None, overrides: Mapping[str, float]) -> RateLimits:
    base = REGION_RATE_LIMITS.get(region or "", CONSERVATIVE_LIMITS)
    return RateLimits(
        list=float(overrides.get("list", base.list)),
        show=float(overrides.get("show", base.show)),
        update=float(overrides.get("update", base.update)),
    )
