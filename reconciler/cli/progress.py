"""A live ``[done/total]`` line on stderr for long work, with its rate and the time left.

Shown only when stderr is a terminal (and logs are not JSON lines): a pipeline's log gets
nothing extra. The line is redrawn in place at most ten times a second; when a stage finishes
it stays as a record of how long it took. Anything else written meanwhile goes through
:meth:`ProgressLine.message` or after :meth:`ProgressLine.clear`, so it never lands in the
middle of the line.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

from reconciler.options import GlobalOptions

log = logging.getLogger("reconciler.cli")

REDRAW_INTERVAL = 0.1
RATE_AFTER = 0.2  # seconds of a stage before its rate means anything


def duration(seconds: float) -> str:
    """``8.5 s``, ``2 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ProgressLine:
    """One in-place status line; see the module docstring.

    With ``-v`` (``logged``) the stage messages and each finished stage (with its time) are
    log lines instead (``[   0.42s] Loading manifests...``), so they reach a CI log too;
    ``draw`` says whether the in-place line is drawn (only on a terminal).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        draw: bool = True,
        logged: bool = False,
    ) -> None:
        self._stream = stream or sys.stderr
        self._clock = clock
        self._draw = draw
        self._logged = logged
        self._what = ""
        self._started = 0.0
        self._drawn_at = float("-inf")
        self._shown = False

    def message(self, text: str) -> None:
        """A line of its own (``Loading manifests...``), above the progress line."""
        self.clear()
        if self._logged:
            log.info("%s", text)
        else:
            self._write(text + "\n")

    def count(self, what: str, done: int, total: int) -> None:
        """``done`` of ``total`` items of the stage ``what`` are finished."""
        now = self._clock()
        if what != self._what:
            self.clear()
            self._what, self._started, self._drawn_at = what, now, float("-inf")
        finished = done >= total
        if finished and self._logged:
            self.clear()
            log.info("%s", self.line(what, done, total, now - self._started))
            self._what = ""
            return
        if not self._draw or (not finished and now - self._drawn_at < REDRAW_INTERVAL):
            return
        self._drawn_at = now
        self._write("\r" + self.line(what, done, total, now - self._started) + "\x1b[K")
        self._shown = not finished
        if finished:
            self._write("\n")
            self._what = ""

    @staticmethod
    def line(what: str, done: int, total: int, elapsed: float) -> str:
        """``[ 300/1000] reading live assets  118.2/s, about 5.9 s left``."""
        width = len(str(total))
        text = f"[{done:>{width}}/{total}] {what}"
        if done >= total:
            return f"{text}, {duration(elapsed)}"
        if elapsed >= RATE_AFTER and done:
            rate = done / elapsed
            text += f"  {rate:.1f}/s, about {duration((total - done) / rate)} left"
        return text

    def clear(self) -> None:
        """Remove an unfinished line, before other output."""
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def progress_for(options: GlobalOptions) -> ProgressLine | None:
    """A progress line when stderr is a terminal and logs are text; with ``-v`` also without
    a terminal (then only its log lines: stages and their times); else None."""
    terminal = options.log_format != "json" and sys.stderr.isatty()
    if options.verbose:
        return ProgressLine(draw=terminal, logged=True)
    return ProgressLine() if terminal else None
