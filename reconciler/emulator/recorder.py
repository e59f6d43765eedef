"""The request log (``--record``): one JSON object per line, secrets removed, for tests to read."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

# Header values never written: they are, or derive from, credentials.
SECRET_HEADERS = frozenset({"authorization", "x-auth-token", "x-security-token"})
REDACTED = "***"


def safe_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-cased header names with credential values replaced by ``***``."""
    result: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        result[name] = REDACTED if name in SECRET_HEADERS else value
    return result


def body_for_log(body: bytes) -> Any:
    """Parsed JSON when the body is JSON, else its text, else None when empty."""
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class RequestRecorder:
    """Appends entries to a JSON-lines file; safe to call from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        with self._lock:
            text = self.path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def clear(self) -> None:
        with self._lock:
            self.path.write_text("", encoding="utf-8")
