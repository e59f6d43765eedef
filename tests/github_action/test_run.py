"""The action's own logic: which command the inputs make, and what it posts."""

from __future__ import annotations

import pytest

from action.run import (
    MAX_BODY,
    ActionError,
    Inputs,
    command_line,
    failure_report,
    fit_body,
    marker,
    with_marker,
)


def inputs(**values: str) -> Inputs:
    return Inputs.from_env({f"INPUT_{k.upper()}": v for k, v in values.items()})


def test_plan_with_a_target_puts_global_options_first() -> None:
    argv = command_line(inputs(command="plan", paths="a b/c", target="prod"), "reconciler")
    assert argv == ["reconciler", "--target", "prod", "plan", "a", "b/c", "--format", "markdown"]


def test_apply_never_waits_for_a_prompt() -> None:
    argv = command_line(inputs(command="apply", args="--force"), "reconciler")
    assert argv == ["reconciler", "apply", "manifests", "--auto-approve", "--force"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"command": "destroy"}, "input 'command' must be one of"),
        ({"command": "plan", "format": "yaml"}, "input 'format' must be one of"),
        ({"command": "plan", "comment": "yes"}, "true or false"),
        ({"command": "plan", "format": "json"}, "needs format 'markdown'"),
    ],
)
def test_bad_inputs_are_refused_with_the_input_named(values: dict[str, str], message: str) -> None:
    with pytest.raises(ActionError, match=message):
        inputs(**values)


def test_a_json_plan_without_a_comment_is_fine() -> None:
    assert not inputs(command="plan", format="json", comment="false").comment


def test_the_marker_is_not_repeated_when_the_report_has_it() -> None:
    line = marker("plan", "prod")
    assert line == "<!-- reconciler:plan target=prod -->"
    assert with_marker(line, "## plan\n") == f"{line}\n## plan\n"
    assert with_marker(line, f"{line}\n## plan\n") == f"{line}\n## plan\n"
    assert marker("drift", "") == "<!-- reconciler:drift target=default -->"


def test_a_failure_report_cannot_be_broken_out_of() -> None:
    report = failure_report("plan", 1, "bad\n```\n<details>")
    assert "\n````\nbad\n```\n<details>\n````\n" in report


def test_bodies_stay_under_githubs_limit() -> None:
    assert len(fit_body("x" * (MAX_BODY + 10))) <= MAX_BODY
    assert len(failure_report("plan", 1, "e" * 100_000)) <= MAX_BODY
