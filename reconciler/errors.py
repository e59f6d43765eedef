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


def unwrap(exc: BaseException) -> BaseException:
    """The error to report for ``exc``: itself, or for an exception group (concurrent requests
    fail as one) its first project error, else its first leaf, depth first."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if isinstance(current, BaseExceptionGroup):
            pending[:0] = list(current.exceptions)
        else:
            leaves.append(current)
    return next((e for e in leaves if isinstance(e, ReconcilerError)), leaves[0] if leaves else exc)
