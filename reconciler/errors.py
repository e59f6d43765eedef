"""The project's own exceptions: every expected failure is one of these, never a traceback."""

from __future__ import annotations


class ReconcilerError(Exception):
    """An expected failure with a message for the user and the exit code it maps to."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ReconcilerError):
    """Configuration or credentials are missing or malformed."""
