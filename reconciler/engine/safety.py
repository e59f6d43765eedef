"""The safety threshold (docs/apply.md): a plan that changes too much of the fleet needs --force.

A typo in a shared manifest, a wrong target or a bad selector can turn into hundreds of PUTs.
When at least ``min_assets`` assets are managed and more than ``max_change_percent`` of them
would change, ``plan`` warns and ``apply`` refuses unless ``--force`` is given.  The defaults
(30%, more than 10 managed) are design.md's; ``safety:`` in reconciler.yaml and
``--max-change-percent`` change them (docs/apply.md).  This module decides; the wording is
:func:`reconciler.render.apply_text.threshold_message`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.engine.plan import Plan

MAX_CHANGE_PERCENT = 30.0
MIN_ASSETS = 11  # "when more than 10 are managed"


@dataclass(frozen=True)
class SafetyPolicy:
    """How much of the managed fleet one run may change without ``--force``."""

    max_change_percent: float = MAX_CHANGE_PERCENT
    min_assets: int = MIN_ASSETS


@dataclass(frozen=True)
class Crossing:
    """A plan above the threshold: how many assets would change, of how many managed."""

    changing: int
    managed: int
    max_change_percent: float = MAX_CHANGE_PERCENT

    @property
    def share(self) -> float:
        return self.changing / self.managed

    @property
    def max_share(self) -> float:
        return self.max_change_percent / 100


def threshold(plan: Plan, policy: SafetyPolicy | None = None) -> Crossing | None:
    """The crossing when the plan changes too much of what it manages, else None."""
    policy = policy or SafetyPolicy()
    # A plan of what changed since a revision holds a few of the target's assets: weigh it
    # against all of them.
    changed_since = plan.changed_since
    managed = len(plan.assets) if changed_since is None else changed_since.managed
    changing = plan.summary.to_change
    if managed < max(policy.min_assets, 1) or 100 * changing <= policy.max_change_percent * managed:
        return None
    return Crossing(changing, managed, policy.max_change_percent)


@dataclass(frozen=True)
class ThresholdCrossed:
    """Targets whose plan crosses their safety threshold (``(target, crossing)`` each);
    ``shown``: the plan was just shown with its warnings, so the numbers need not be repeated."""

    crossings: list[tuple[str | None, Crossing]]
    several: bool
    shown: bool = False
