"""How a run is stopped from outside: Ctrl-C, SIGTERM and the ``--timeout`` deadline.

Outside a graceful section each of them raises a :class:`Stopped` exception into whatever runs
(reading files, waiting for an answer), so the run unwinds, closes its connections and its
worker processes, and the CLI prints one line and exits: 130 after Ctrl-C, 143 after SIGTERM
(128 + the signal's number, as a shell reports it), 1 when the deadline passed.

Inside :func:`graceful` (an apply sending writes) the first of them only asks the work to start
nothing new: the requests in flight finish and a summary says what was done; a second one
abandons them.  ``Stopped`` derives from ``KeyboardInterrupt`` so that no ``except Exception``
swallows it and asyncio lets it through its tasks, exactly as it does Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)


class Stopped(KeyboardInterrupt):
    """The run was stopped from outside; ``message`` is what the user is told, ``cause`` what
    stopped it in a few words."""

    exit_code = 130
    is_error = False  # shown as an error line (``Error: ...``) rather than a notice

    def __init__(self, message: str = "Interrupted.", cause: str = "Ctrl-C") -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause


class Terminated(Stopped):
    exit_code = 128 + signal.SIGTERM

    def __init__(self) -> None:
        super().__init__("Terminated (SIGTERM).", "SIGTERM")


class DeadlineExceeded(Stopped):
    exit_code = 1
    is_error = True

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the run did not finish within --timeout {seconds:g}s; stopped.",
            f"--timeout {seconds:g}s",
        )
        self.seconds = seconds


_deadline: float | None = None
_deadline_at: float | None = None  # time.monotonic() at which the run's deadline passes
_pending: Stopped | None = None


def remaining() -> float | None:
    """Seconds left before the run's ``--timeout`` deadline (never below 0); None without one.

    Waits that would end past it (a back-off, a ``Retry-After``) are not started at all."""
    if _deadline_at is None:
        return None
    return max(0.0, _deadline_at - time.monotonic())


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, with ``main``'s result kept out of the loop's main task.

    When ``asyncio.Runner`` ends it checks its SIGINT handler with ``signal.getsignal``, which
    formats the handler's repr, and so the main task's repr with its result: a whole plan of
    10,000 assets, 0.1 s of CPU for a string nobody reads.  The task here returns nothing.
    """
    result: list[T] = []

    async def holder() -> None:
        result.append(await main)

    asyncio.run(holder())
    return result[0]


def stop_for(signum: int) -> Stopped:
    """The exception that stands for ``signum`` (one of :data:`STOP_SIGNALS`)."""
    if signum == signal.SIGTERM:
        return Terminated()
    if signum == signal.SIGALRM and _deadline is not None:
        return DeadlineExceeded(_deadline)
    return Stopped()


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = stop_for(signum)
    raise _pending


def check() -> None:
    """Raise a stop that arrived but did not end the run.

    Python ignores exceptions raised inside some callbacks (those it runs around ``fork``, in
    ``__del__``, in weakref callbacks): a signal that lands there is printed as "Exception
    ignored" and the run goes on.  Long loops call this between steps, and the CLI once more
    before it exits, so such a stop still ends the run with its exit code.
    """
    if _pending is not None:
        raise _pending


def install() -> None:
    """SIGTERM stops the run like Ctrl-C (called first thing by the CLI)."""
    previous_hook = sys.unraisablehook

    def quiet_stops(unraisable: Any) -> None:
        # A stop raised where Python ignores exceptions is delivered by check(), not printed.
        if not isinstance(unraisable.exc_value, Stopped):
            previous_hook(unraisable)

    sys.unraisablehook = quiet_stops
    signal.signal(signal.SIGTERM, _raise_stop)


def start_deadline(seconds: float) -> None:
    """End the run after ``seconds`` (``--timeout``), counted from now; a timer of this process
    only, so forked workers do not inherit it."""
    global _deadline, _deadline_at
    _deadline = seconds
    _deadline_at = time.monotonic() + seconds
    signal.signal(signal.SIGALRM, _raise_stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Stop signals wait until the block ends, for steps that must not be cut in half (forking
    worker processes, shutting them down); a signal that arrived meanwhile is handled as the
    block ends.  Threads started inside the block inherit the blocked signals, so none of them
    can take the signal instead."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def graceful(on_stop: Callable[[Stopped], None]) -> Iterator[None]:
    """Within the running event loop: the first stop calls ``on_stop`` (start nothing new, let
    requests in flight finish); a second one cancels the current task (abandon them).

    The handlers that were there before are restored afterwards.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    stops = 0

    def handle(signum: int) -> None:
        nonlocal stops
        stops += 1
        if stops == 1:
            on_stop(stop_for(signum))
        elif task is not None:
            task.cancel()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, handle, signum)
    try:
        yield
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(signum, previous[signum])
