"""The safety threshold (docs/apply.md): a plan that changes too much of the fleet needs --force.

A typo in a shared manifest, a wrong target or a bad selector can turn into hundreds of PUTs.
When more than ``MIN_MANAGED`` assets are managed and more than ``MAX_SHARE`` of them would change,
``plan`` warns and ``apply`` refuses unless ``--force`` is given.  This module decides; the
wording is :func:`reconciler.render.apply_text.threshold_message`.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.engine.plan import Plan

MAX_SHARE = 0.30
MIN_MANAGED = 10


@dataclass(frozen=True)
class Crossing:
    """A plan above the threshold: how many assets would change, of how many managed."""

    changing: int
    managed: int
    max_share: float = MAX_SHARE

    @property
    def share(self) -> float:
        return self.changing / self.managed


def threshold(plan: Plan) -> Crossing | None:
    """The crossing when the plan changes too much of what it manages, else None."""
    managed = len(plan.assets)
    changing = plan.summary.to_change
    if managed <= MIN_MANAGED or changing <= MAX_SHARE * managed:
        return None
    return Crossing(changing, managed)
