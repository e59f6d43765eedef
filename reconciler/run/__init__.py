"""The run layer: every command's run, from options to a result the CLI renders.

Each command module under ``reconciler/cli`` (and ``watch``) parses its options, calls one
function of this package, hands the result to a renderer and maps it to an exit code.  This
package is that one door; its modules print nothing and hold no wording: refusals and
warnings leave as data (:class:`ThresholdCrossed`, :class:`PlanStale`, the plan's ``crossing``
and ``targeting``, each session's retry tally through :func:`sessions_opened`).

| command | function | returns | module |
|---|---|---|---|
| plan | :func:`make_plan` | ``PlanSet`` (one ``Plan`` per target) | ``plan.py`` |
| apply MANIFESTS | :func:`apply_manifests` | :class:`ApplyRun` | ``apply.py`` |
| apply PLANFILE | :func:`apply_saved` | :class:`ApplyRun` | ``apply.py`` |
| drift | :func:`make_drift` | ``DriftReport`` | ``drift.py`` |
| import | :func:`import_assets` | :class:`ImportRun` | ``importing.py`` |
| watch: targets | :func:`open_run` | :class:`Run` of :class:`TargetRun` | ``targets.py`` |
| watch: a cycle (incremental) | :class:`WatchReads` | ``DriftReport`` | ``incremental.py`` |
| watch: self-heal | :func:`heal` | :class:`HealRun` | ``heal.py`` |
| watch: which replica leads | :class:`Leadership` | :class:`Standing` per project | ``leader.py`` |
| show PLANFILE | :func:`read_plan` | ``SavedPlan`` | ``planfile.py`` |

Which target each manifest belongs to is decided in one place (``run/selection.py``) for every
command; streamed runs (reads while the manifests load) are ``run/streamed.py``; sessions
``run/session.py``; write locks ``run/locks.py``.
"""

from __future__ import annotations

from reconciler.constants import DEFAULT_PATHS
from reconciler.engine.apply import PlanStale
from reconciler.engine.safety import ThresholdCrossed
from reconciler.run.apply import (
    ApplyAborted,
    ApplyHooks,
    ApplyRefused,
    ApplyRun,
    Refusal,
    apply_manifests,
    apply_saved,
)
from reconciler.run.drift import make_drift, manifest_digests
from reconciler.run.heal import HealRun, heal
from reconciler.run.importing import ImportRun, LiveAssets, import_assets, read_live
from reconciler.run.incremental import (
    DEFAULT_MARGIN,
    DEFAULT_RESYNC,
    FALLBACK_REASONS,
    ReadsStopped,
    TargetRead,
    WatchReads,
)
from reconciler.run.leader import LEADER_SUFFIX, Leadership, Standing, leader_key
from reconciler.run.locks import Guard, project_lock
from reconciler.run.plan import make_plan
from reconciler.run.planfile import PlanFileError, SavedPlan, read_plan, write_plan
from reconciler.run.selection import Filters
from reconciler.run.session import Session, StageCounter, open_session, sessions_opened
from reconciler.run.targets import Run, TargetRun, open_run
from reconciler.state import LockHeld

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_PATHS",
    "DEFAULT_RESYNC",
    "FALLBACK_REASONS",
    "LEADER_SUFFIX",
    "ApplyAborted",
    "ApplyHooks",
    "ApplyRefused",
    "ApplyRun",
    "Filters",
    "Guard",
    "HealRun",
    "ImportRun",
    "Leadership",
    "LiveAssets",
    "LockHeld",
    "PlanFileError",
    "PlanStale",
    "ReadsStopped",
    "Refusal",
    "Run",
    "SavedPlan",
    "Session",
    "StageCounter",
    "Standing",
    "TargetRead",
    "TargetRun",
    "ThresholdCrossed",
    "WatchReads",
    "apply_manifests",
    "apply_saved",
    "heal",
    "import_assets",
    "leader_key",
    "make_drift",
    "make_plan",
    "manifest_digests",
    "open_run",
    "open_session",
    "project_lock",
    "read_live",
    "read_plan",
    "sessions_opened",
    "write_plan",
]
