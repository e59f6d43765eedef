"""Logging to stderr, as text or JSON lines, with secrets redacted from every record."""

from __future__ import annotations

import json
import logging
import os
import re
import sys

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
_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that no log line ever shows it."""
    if value and len(value) >= 4:
        _registered.add(value)


def redact(text: str) -> str:
    """``text`` with every known secret value and auth header value replaced by ``***``."""
    for secret in _registered:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern in _AUTH_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(verbose: int, log_format: str = "text") -> None:
    for name in _SECRET_ENV:
        register_secret(os.environ.get(name))
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("reconciler")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
