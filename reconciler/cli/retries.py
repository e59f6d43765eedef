"""What a run retried, said once at its end whatever its outcome: one warning per kind, per target.

The run layer keeps each session's retry tally as data; this module watches the sessions a
command's run opens (:func:`reconciler.run.sessions_opened`) and words their tallies.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

from reconciler.cli import output
from reconciler.render.retry_text import retry_lines
from reconciler.render.words import plural
from reconciler.run import Session, sessions_opened

log = logging.getLogger("reconciler.cli")


def report(sessions: Sequence[Session]) -> None:
    """One warning per kind of retry, per target (named when the run had several); with
    ``-v``, the requests each target was sent and where the state lives."""
    several = len({session.target.name for session in sessions}) > 1
    if log.isEnabledFor(logging.INFO):
        _requests_made(sessions)
    for session in sessions:
        for line in retry_lines(session.retries):
            output.warn(
                f"[{session.target.name}] {line}" if several else line,
                target=session.target.name,
                retried=dict(session.retries.retried),
                throttled=session.retries.throttled,
            )


def _requests_made(sessions: Sequence[Session]) -> None:
    """``target prod: 12 requests to https://... (10 list, 2 show)``, once per target, and
    ``state: .reconciler/state.sqlite`` once per place the state lives."""
    seen: set[str] = set()
    places: list[str] = []
    for session in sessions:
        if session.target.name in seen:
            continue
        seen.add(session.target.name)
        tally = session.retries
        made = sum(tally.attempts.values())
        per_api = ", ".join(f"{n} {api}" for api, n in sorted(tally.attempts.items()))
        log.info(
            "target %s: %s to %s%s",
            session.target.name,
            plural(made, "request"),
            session.target.endpoint,
            f" ({per_api})" if per_api else "",
            extra={"target": session.target.name, "requests": dict(tally.attempts)},
        )
        with session.store() as store:
            if store.location not in places:
                places.append(store.location)
    for place in places:
        log.info("state: %s", place)


@contextlib.contextmanager
def reported() -> Iterator[list[Session]]:
    """Report the retries of every session the block's runs open, when the block ends."""
    with sessions_opened() as sessions:
        try:
            yield sessions
        finally:
            report(sessions)
