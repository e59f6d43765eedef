"""The retry decision on its own: which failures are tried again, after how long, and when not."""

from __future__ import annotations

from reconciler.api.attempt import Failure
from reconciler.api.errors import ApiError
from reconciler.api.retry_policy import RetryBudget, RetryPolicy

POLICY = RetryPolicy(max_retries=2, max_throttled=3, backoff_base=1.0, backoff_cap=1.0)


def failure(status: int, *, throttle_wait: float | None = None, retryable: bool = True) -> Failure:
    error = ApiError(method="GET", path="/v1/p/digital-assets", status=status)
    return Failure(error, retryable=retryable, maybe_applied=False, throttle_wait=throttle_wait)


def test_failures_use_up_max_retries_and_429s_do_not() -> None:
    budget = RetryBudget.starting(POLICY, now=0.0, run_left=None)
    assert budget.wait_after(failure(503), now=0.0) == 1.0
    for _ in range(3):  # three 429s between the failures: the failure budget is untouched
        assert budget.wait_after(failure(429, throttle_wait=2.0), now=0.0) == 2.0
    assert budget.attempt == 2
    assert budget.wait_after(failure(503), now=0.0) == 1.0
    assert budget.wait_after(failure(503), now=0.0) is None  # a third failure: max_retries 2


def test_429s_stop_at_max_throttled() -> None:
    budget = RetryBudget.starting(POLICY, now=0.0, run_left=None)
    waits = [budget.wait_after(failure(429, throttle_wait=0.5), now=0.0) for _ in range(4)]
    assert waits == [0.5, 0.5, 0.5, None]


def test_no_wait_may_end_past_the_run_deadline_or_total_time() -> None:
    run_bound = RetryBudget.starting(POLICY, now=100.0, run_left=3.0)
    assert run_bound.wait_after(failure(429, throttle_wait=2.0), now=100.5) == 2.0
    assert run_bound.wait_after(failure(429, throttle_wait=2.0), now=101.5) is None
    time_bound = RetryBudget.starting(POLICY, now=0.0, run_left=None)
    assert time_bound.wait_after(failure(503), now=POLICY.total_time - 0.5) is None


def test_a_failure_another_attempt_cannot_fix_is_not_retried() -> None:
    budget = RetryBudget.starting(POLICY, now=0.0, run_left=None)
    assert budget.wait_after(failure(400, retryable=False), now=0.0) is None
    assert (budget.failures, budget.throttles) == (0, 0)
