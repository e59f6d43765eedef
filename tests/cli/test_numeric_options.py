"""Every option that takes a number refuses nan, inf and -inf: exit 1, one line naming the option,
no traceback (a non-finite number passes Python's range checks and breaks timers)."""

from __future__ import annotations

import click
import pytest

from reconciler.cli.global_options import FiniteFloat
from reconciler.cli.main import main
from reconciler.cli.options import DurationType


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    monkeypatch.setattr("sys.argv", ["reconciler", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err
    assert exited.value.code == 1, err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "option", "value"),
    [
        (["--timeout", "nan", "plan"], "--timeout", "nan"),
        (["plan", "--timeout", "inf"], "--timeout", "inf"),
        (["apply", "--timeout", "-inf"], "--timeout", "-inf"),
        (["plan", "--max-change-percent", "nan"], "--max-change-percent", "nan"),
        (["apply", "--max-change-percent", "NaN"], "--max-change-percent", "NaN"),
        (["emulator", "serve", "--latency-ms", "nan"], "--latency-ms", "nan"),
        (["emulator", "serve", "--jitter-ms", "inf"], "--jitter-ms", "inf"),
        (["emulator", "serve", "--fail-rate", "nan"], "--fail-rate", "nan"),
        (["emulator", "serve", "--drop-rate", "-inf"], "--drop-rate", "-inf"),
    ],
)
def test_a_non_finite_number_is_a_usage_error_naming_the_option(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    option: str,
    value: str,
) -> None:
    line = run(monkeypatch, capsys, *args)
    assert line == f"Error: Invalid value for '{option}': '{value}' is not a finite number"


@pytest.mark.parametrize("rates", ["update=nan", "list=20,show=inf", "list=1e999"])
def test_emulator_rate_limits_refuse_non_finite_rates(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rates: str
) -> None:
    line = run(monkeypatch, capsys, "emulator", "serve", "--rate-limits", rates)
    assert line.startswith("Error: Invalid value for '--rate-limits': ")
    assert line.endswith("the rate is not a finite number")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["apply", "--lock-timeout", "nan"], "--lock-timeout"),
        (["watch", "--interval", "inf"], "--interval"),
        (["watch", "--heal-backoff", "1e999"], "--heal-backoff"),
    ],
)
def test_durations_refuse_non_finite_values(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    option: str,
) -> None:
    line = run(monkeypatch, capsys, *args)
    assert line.startswith(f"Error: Invalid value for '{option}': ")


def test_finite_numbers_keep_their_ranges() -> None:
    percent = FiniteFloat(0, 100)
    assert percent.convert("12.5", None, None) == 12.5
    with pytest.raises(click.BadParameter, match="is not in the range"):
        percent.convert("101", None, None)
    with pytest.raises(click.BadParameter, match="is not a finite number"):
        percent.convert(float("nan"), None, None)
    with pytest.raises(click.BadParameter, match="is not a finite"):
        DurationType().convert(float("inf"), None, None)
