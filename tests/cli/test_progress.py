"""The progress line: counts, rate and time left, redrawn in place, kept when a stage ends."""

from __future__ import annotations

import io

from reconciler.cli.progress import ProgressLine, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_counts_rate_and_time_left() -> None:
    assert ProgressLine.line("applied", 0, 40, 0.0) == "[ 0/40] applied"
    assert ProgressLine.line("applied", 10, 40, 2.0) == ("[10/40] applied  5.0/s, about 6.0 s left")
    assert ProgressLine.line("applied", 40, 40, 8.25) == "[40/40] applied, 8.2 s"
    assert duration(125) == "2 min 05 s" and duration(3720) == "1 h 02 min"


def test_redrawn_in_place_at_most_ten_times_a_second_and_kept_at_the_end() -> None:
    stream, clock = io.StringIO(), Clock()
    line = ProgressLine(stream, clock)
    line.count("reading live assets", 0, 3)
    clock.now += 0.01
    line.count("reading live assets", 1, 3)  # too soon: not drawn
    clock.now += 0.5
    line.count("reading live assets", 2, 3)
    line.message("Loading...")  # clears the line first
    clock.now += 0.01
    line.count("reading live assets", 3, 3)  # the last one is always drawn
    assert stream.getvalue() == (
        "\r[0/3] reading live assets\x1b[K"
        "\r[2/3] reading live assets  3.9/s, about 0.3 s left\x1b[K"
        "\r\x1b[KLoading...\n"
        "\r[3/3] reading live assets, 0.5 s\x1b[K\n"
    )
    line.clear()  # nothing shown: nothing written
    assert stream.getvalue().endswith("0.5 s\x1b[K\n")
