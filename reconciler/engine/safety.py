"""The safety threshold (design.md 4): a plan that changes too much of the fleet needs --force.

A typo in a shared manifest, a wrong target or a bad selector can turn into hundreds of PUTs.
When more than ``MIN_MANAGED`` assets are managed and more than ``MAX_SHARE`` of them would change,
``plan`` warns and ``apply`` refuses unless ``--force`` is given.
"""

from __future__ import annotations

from reconciler.engine.plan import Plan

MAX_SHARE = 0.30
MIN_MANAGED = 10


def threshold_message(plan: Plan) -> str | None:
    """The warning/refusal text when the plan crosses the threshold, else None."""
    managed = len(plan.assets)
    changing = plan.summary.to_change
    if managed <= MIN_MANAGED or changing <= MAX_SHARE * managed:
        return None
    share = 100 * changing / managed
    return (
        f"{changing} of {managed} managed assets ({share:.0f}%) would change, more than the "
        f"{MAX_SHARE:.0%} safety threshold; apply refuses this without --force"
    )
