"""Logging to stderr, as text or JSON lines, with secrets redacted from every record.

``--log-format json`` writes one JSON object per line: ``time`` (RFC 3339, UTC, milliseconds),
``level``, ``logger``, ``message``, then the record's structured fields (``asset_id``,
``request_id``, ``attempt``, ``status``, ``target``, ... given as ``extra=``) and ``exception``.
The command line's own errors and warnings are records of the ``reconciler.cli`` logger, so they
take the same path: ``Error: ...`` / ``Warning: ...`` as text, an object per line as JSON.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

from reconciler.escape import clean_lines

_SECRET_ENV = (
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "HW_ACCESS_KEY",
    "HW_SECRET_KEY",
    "HW_SECURITY_TOKEN",
    "HW_AUTH_TOKEN",
)
_AUTH_PATTERNS = [
    re.compile(r"(Signature=)[0-9a-fA-F]+"),
    re.compile(r"(Access=)[^,\s]+"),
    re.compile(
        r"((?:X-Auth-Token|X-Security-Token|Authorization)['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+", re.I
    ),
]
_registered: list[str] = []  # every form of every secret, longest first


def escaped_forms(value: str) -> set[str]:
    """``value`` as it may appear inside other text: as is, as repr and JSON escape it, URL
    encoded (path and form style) and base64 encoded."""
    forms = {
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
        base64.b64encode(value.encode("utf-8")).decode("ascii").rstrip("="),
    }
    return {form for form in forms if len(form) >= 4}


def register_secret(value: str | None) -> None:
    """Remember a secret value so that no log line ever shows it, in any of its escaped forms."""
    if value and len(value) >= 4:
        forms = escaped_forms(value).union(_registered)
        _registered[:] = sorted(forms, key=len, reverse=True)


def registered_secrets() -> frozenset[str]:
    """The secret values read so far (credentials of every target)."""
    return frozenset(_registered)


def redact(text: str) -> str:
    """``text`` with every known secret value and auth header value replaced by ``***``.

    Longer forms first, so that a form containing another is replaced whole."""
    for secret in _registered:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern in _AUTH_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class RedactingFilter(logging.Filter):
    """Secrets out and invisible characters escaped: a log line shows what it says."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = clean_lines(redact(record.getMessage()))
        record.args = None
        return True


USER_LOGGER = "reconciler.cli"  # the command line's own messages to the person running it
# Loggers whose warnings and errors speak to the person running the command: shown as
# ``Warning: ...`` rather than ``WARNING logger: ...``.
USER_LOGGERS = (USER_LOGGER, "reconciler.run")
# Loggers whose INFO lines are ``-v``'s account of a run (phases, requests, state), shown with
# the seconds since the command started.
_VERBOSE_LOGGERS = ("reconciler.cli", "reconciler.run", "reconciler.live")
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def rfc3339_millis(created: float) -> str:
    """``2026-12-01T06:50:34.123Z`` for a ``time.time()`` value."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _redacted(value: Any) -> Any:
    """``value`` as JSON data (mappings and lists kept), every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {redact(str(k)): _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted(v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": rfc3339_millis(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in entry:
                entry[key] = _redacted(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def _speaks_to_user(name: str) -> bool:
    return any(name == user or name.startswith(user + ".") for user in USER_LOGGERS)


class TextFormatter(logging.Formatter):
    """What the person running the command reads on stderr.

    * Every warning and error, whichever module noticed it: ``Warning: ...`` / ``Error: ...``
      (the module's name is of no use to a user; ``--log-format json`` keeps it).
    * ``-v`` (INFO) lines of the command line and the run: ``[  0.42s] message``, the seconds
      since the command started, so the time each phase took can be read off the left edge.
    * Anything else (``-vv`` debug lines, a module's own INFO): ``LEVEL logger: message``.
    """

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname.capitalize()}: {record.getMessage()}"
            if record.exc_info:
                text += "\n" + redact(self.formatException(record.exc_info))
            return text
        if record.levelno == logging.INFO and record.name.startswith(_VERBOSE_LOGGERS):
            return f"[{record.relativeCreated / 1000:7.2f}s] {record.getMessage()}"
        return super().format(record)


def configure_logging(verbose: int, log_format: str = "text") -> None:
    """Send the ``reconciler`` loggers to stderr at the level ``-v`` asks for, redacted."""
    for name in _SECRET_ENV:
        register_secret(os.environ.get(name))
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger("reconciler")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def is_configured() -> bool:
    return bool(logging.getLogger("reconciler").handlers)
