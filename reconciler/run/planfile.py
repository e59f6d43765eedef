"""Saved plans (``reconciler plan --out FILE``): the JSON plan plus what apply needs.

A plan file is the document of ``reconciler plan --format json`` with a ``plan_file`` section: a
marker that tells a plan file from any other JSON, the reconciler version that wrote it, and a
checksum over the rest so that a file edited after planning is refused rather than applied.
It covers every target of the run (each entry of ``targets`` names its project and endpoint);
apply compares each asset's ``live_fingerprint`` with the live asset of its own target to refuse
a stale plan.  Files of the previous format (1.x, one target) are still read. The
file never holds credentials: it is built from the plan only, and writing refuses if a credential
value would appear in it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import __version__, jsonstream
from reconciler.engine.plan import FORMAT_VERSION, Plan, PlanSet
from reconciler.errors import ReconcilerError
from reconciler.files import write_atomic_chunks
from reconciler.logs import _SECRET_ENV, registered_secrets

PLAN_FILE_KIND = "reconciler-plan"
# Major format versions this reconciler reads: the current one and 1 (one target per file).
READABLE_MAJORS = (FORMAT_VERSION.split(".")[0], "1")


class PlanFileError(ReconcilerError):
    """A plan file cannot be written, or is missing, malformed, foreign or incompatible."""


@dataclass(frozen=True)
class SavedPlan:
    """A plan read back from a file: every target's plan."""

    path: Path
    plan: PlanSet
    reconciler_version: str
    format_version: str


def digest(data: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``data`` (sorted keys, no whitespace); ``data``
    may hold :class:`~reconciler.jsonstream.Streamed` lists."""
    hasher = hashlib.sha256()
    for chunk in jsonstream.canonical(data):
        hasher.update(chunk.encode("utf-8"))
    return "sha256:" + hasher.hexdigest()


def plan_document(plan: Plan | PlanSet, *, stream: bool = False) -> dict[str, Any]:
    """The full plan-file document, checksum included; with ``stream`` its assets are made as
    they are written (encode it with :mod:`reconciler.jsonstream`)."""
    data = PlanSet.of(plan).to_json(stream=stream)
    data["plan_file"] = {"kind": PLAN_FILE_KIND, "reconciler_version": __version__}
    data["plan_file"]["checksum"] = digest(data)
    return data


def write_plan(path: str | os.PathLike[str], plan: Plan | PlanSet) -> Path:
    """Write the plan atomically (a reader never sees half a file); returns the path.

    The document is written piece by piece (each asset's entry made as it is written), so a plan
    of 100,000 assets never exists whole in memory; a credential found in any piece stops the
    write before the file is replaced."""
    target = Path(path)
    pieces = jsonstream.indented(plan_document(plan, stream=True), end="\n")
    try:
        write_atomic_chunks(target, _checked(pieces, target))
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
        plan = PlanSet.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanFileError(f"{source} is a malformed plan file: {_describe(exc)}") from exc
    return SavedPlan(
        path=source,
        plan=plan,
        reconciler_version=str(meta.get("reconciler_version")),
        format_version=str(version),
    )


def _check_version(source: Path, version: object, writer: object) -> None:
    if not isinstance(version, str) or not version.split(".")[0].isdigit():
        raise PlanFileError(f"{source} is a malformed plan file: missing or invalid format_version")
    if version.split(".")[0] not in READABLE_MAJORS:
        readable = " and ".join(f"{major}.x" for major in READABLE_MAJORS)
        raise PlanFileError(
            f"{source} has plan format {version} (written by reconciler {writer}); this "
            f"reconciler ({__version__}) reads formats {readable} only: make the plan again"
        )


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def _checked(pieces: Iterator[str], target: Path) -> Iterator[str]:
    """``pieces`` as they come, refusing the first that would put a credential in the file
    (searched across piece boundaries: each piece is searched with the end of the one before)."""
    named = [(name, value) for name in _SECRET_ENV if len(value := os.environ.get(name) or "") >= 8]
    # Secrets read under a target's credentials_env_prefix are not in the list above.
    others = [secret for secret in registered_secrets() if len(secret) >= 8]
    longest = max((len(v) for v in [*(v for _, v in named), *others]), default=1)
    tail = ""
    for piece in pieces:
        window = tail + piece
        for name, value in named:
            if value in window:
                raise PlanFileError(
                    f"refusing to write plan file {target}: it would contain the value of {name}"
                )
        if any(secret in window for secret in others):
            raise PlanFileError(
                f"refusing to write plan file {target}: it would contain a credential"
            )
        tail = window[-(longest - 1) :] if longest > 1 else ""
        yield piece
