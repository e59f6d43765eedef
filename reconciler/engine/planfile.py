"""Saved plans (``reconciler plan --out FILE``): the JSON plan plus what apply needs.

A plan file is the document of ``reconciler plan --format json`` with a ``plan_file`` section: a
marker that tells a plan file from any other JSON, the reconciler version that wrote it, and a
checksum over the rest so that a file edited after planning is refused rather than applied.
Apply compares each asset's ``live_fingerprint`` with the live asset to refuse a stale plan. The
file never holds credentials: it is built from the plan only, and writing refuses if a credential
value would appear in it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.engine.plan import FORMAT_VERSION, Plan
from reconciler.errors import ReconcilerError
from reconciler.files import write_atomic
from reconciler.logs import _SECRET_ENV

PLAN_FILE_KIND = "reconciler-plan"


class PlanFileError(ReconcilerError):
    """A plan file cannot be written, or is missing, malformed, foreign or incompatible."""


@dataclass(frozen=True)
class PlanContext:
    """Where the plan was made: what apply checks before sending."""

    target: str | None
    project_id: str | None
    endpoint: str | None


@dataclass(frozen=True)
class SavedPlan:
    """A plan read back from a file, with its context."""

    path: Path
    plan: Plan
    context: PlanContext
    reconciler_version: str
    format_version: str


def digest(data: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``data`` (sorted keys, no whitespace)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def plan_document(plan: Plan, context: PlanContext) -> dict[str, Any]:
    """The full plan-file document, checksum included."""
    data = plan.to_json()
    data["target"] = context.target
    data["project_id"] = context.project_id
    data["endpoint"] = context.endpoint
    data["plan_file"] = {"kind": PLAN_FILE_KIND, "reconciler_version": __version__}
    data["plan_file"]["checksum"] = digest(data)
    return data


def write_plan(path: str | os.PathLike[str], plan: Plan, context: PlanContext) -> Path:
    """Write the plan atomically (a reader never sees half a file); returns the path."""
    target = Path(path)
    text = json.dumps(plan_document(plan, context), indent=2, ensure_ascii=False) + "\n"
    _refuse_secrets(text, target)
    try:
        write_atomic(target, text)
    except OSError as exc:
        raise PlanFileError(f"cannot write plan file {target}: {exc.strerror or exc}") from exc
    return target


def read_plan(path: str | os.PathLike[str]) -> SavedPlan:
    """Read and check a plan file; every problem is a PlanFileError naming the file."""
    source = Path(path)
    try:
        raw = source.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PlanFileError(f"plan file {source} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise PlanFileError(f"{source} is not a reconciler plan file: not UTF-8 text") from exc
    except OSError as exc:
        raise PlanFileError(f"cannot read plan file {source}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PlanFileError(
            f"{source} is not a reconciler plan file: invalid JSON at line {exc.lineno} "
            f"column {exc.colno} ({exc.msg})"
        ) from exc
    meta = data.get("plan_file") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or meta.get("kind") != PLAN_FILE_KIND:
        raise PlanFileError(
            f"{source} is not a reconciler plan file (write one with `reconciler plan --out`)"
        )
    version = data.get("format_version")
    _check_version(source, version, meta.get("reconciler_version"))
    claimed = meta.pop("checksum", None)
    if claimed != digest(data):
        raise PlanFileError(
            f"{source} was modified after it was written (checksum mismatch); make a new plan"
        )
    try:
        plan = Plan.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanFileError(f"{source} is a malformed plan file: {_describe(exc)}") from exc
    context = PlanContext(
        target=plan.target,
        project_id=plan.project_id,
        endpoint=plan.endpoint,
    )
    return SavedPlan(
        path=source,
        plan=plan,
        context=context,
        reconciler_version=str(meta.get("reconciler_version")),
        format_version=str(version),
    )


def _check_version(source: Path, version: object, writer: object) -> None:
    ours = FORMAT_VERSION.split(".")[0]
    if not isinstance(version, str) or not version.split(".")[0].isdigit():
        raise PlanFileError(f"{source} is a malformed plan file: missing or invalid format_version")
    if version.split(".")[0] != ours:
        raise PlanFileError(
            f"{source} has plan format {version} (written by reconciler {writer}); this "
            f"reconciler ({__version__}) reads format {ours}.x only: make the plan again"
        )


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def _refuse_secrets(text: str, target: Path) -> None:
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 8 and value in text:
            raise PlanFileError(
                f"refusing to write plan file {target}: it would contain the value of {name}"
            )
