"""What a run retried, said once at its end whatever its outcome: one warning per kind, per target.

The run layer keeps each session's retry tally as data; this module watches the sessions a
command's run opens (:func:`reconciler.run.sessions_opened`) and words their tallies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from reconciler.cli import output
from reconciler.render.retry_text import retry_lines
from reconciler.run import Session, sessions_opened


def report(sessions: Sequence[Session]) -> None:
    """One warning per kind of retry, per target (named when the run had several)."""
    several = len({session.target.name for session in sessions}) > 1
    for session in sessions:
        for line in retry_lines(session.retries):
            output.warn(
                f"[{session.target.name}] {line}" if several else line,
                target=session.target.name,
                retried=dict(session.retries.retried),
                throttled=session.retries.throttled,
            )


@contextlib.contextmanager
def reported() -> Iterator[list[Session]]:
    """Report the retries of every session the block's runs open, when the block ends."""
    with sessions_opened() as sessions:
        try:
            yield sessions
        finally:
            report(sessions)
