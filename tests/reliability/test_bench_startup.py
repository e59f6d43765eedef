"""``make bench`` reports the start-up wall time of ``--help`` and of ``validate`` on one file."""

from __future__ import annotations

import pytest

from bench import startup

pytestmark = pytest.mark.reliability


def test_measures_help_and_validate_of_one_file() -> None:
    rows = startup.measure(runs=1)
    assert [r.command for r in rows] == ["reconciler --help", "reconciler validate voice.yaml"]
    assert all(len(r.times) == 1 and r.times[0] > 0 for r in rows)
    table = startup.report(rows)
    assert startup.HEADER in table and "| `reconciler --help` |" in table
