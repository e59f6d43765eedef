"""Mutation testing of the core modules (``make mutation``): mutmut 3, one module at a time.

Each module is mutated against its own unit tests only, so that a module's score says how well
*its* tests pin its behaviour, not how often another suite happens to pass through it.  mutmut
reads its settings from ``[tool.mutmut]`` in the current directory's pyproject.toml, so every
module runs in its own copy of the tree (``.mutation/<module>/``) whose table adds the module to
``only_mutate`` and its tests to ``pytest_add_cli_args_test_selection``.

A surviving mutant that changes nothing a user could observe is *equivalent*: it is listed in
``tools/mutation_equivalent.toml`` with the reason, and excluded from the score.  The score is
killed / (mutants - equivalent); survivors, mutants no test reached and unjudged ones count
against it.  The result is printed and written to ``tests/mutation-baseline.md``.

Usage: python tools/mutation.py [--workers N] [--report-only] [MODULE ...]
(MODULE: signing, normalize, freshness, safety, diff; default all, in that order).  The baseline
covers every module that has a result in ``.mutation/``, so modules can be run one at a time.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
BASELINE = ROOT / "tests" / "mutation-baseline.md"
EQUIVALENT = ROOT / "tools" / "mutation_equivalent.toml"
TARGET_SCORE = 90.0


@dataclass(frozen=True)
class Module:
    """One module under mutation and the tests that are its own."""

    name: str
    source: str
    tests: tuple[str, ...]


# Run in this order: diff.py last (it is the largest and changes most often).
MODULES: tuple[Module, ...] = (
    Module(
        "signing",
        "reconciler/api/signing.py",
        ("tests/api/test_signing.py", "tests/api/test_signing_edges.py"),
    ),
    Module(
        "normalize",
        "reconciler/engine/normalize.py",
        ("tests/engine/test_normalize.py", "tests/engine/test_normalize_edges.py"),
    ),
    Module(
        "freshness",
        "reconciler/engine/freshness.py",
        ("tests/engine/test_freshness.py", "tests/engine/test_freshness_edges.py"),
    ),
    Module(
        "safety",
        "reconciler/engine/safety.py",
        ("tests/engine/test_safety.py", "tests/engine/test_safety_edges.py"),
    ),
    Module(
        "ignore",
        "reconciler/engine/ignore.py",
        ("tests/engine/test_ignore.py",),
    ),
    Module(
        "guardrails",
        "reconciler/engine/guardrails.py",
        ("tests/engine/test_guardrails.py",),
    ),
    Module(
        "history",
        "reconciler/engine/history.py",
        ("tests/engine/test_history.py",),
    ),
    Module(
        "diff",
        "reconciler/engine/diff.py",
        (
            "tests/engine/test_diff.py",
            "tests/engine/test_ordered_lists.py",
            "tests/engine/test_diff_promise.py",
            "tests/engine/test_diff_rules.py",
        ),
    ),
    Module(
        "outcomes",
        "reconciler/engine/apply.py",
        (
            "tests/live/test_apply.py",
            "tests/live/test_apply_attempts.py",
            "tests/engine/test_apply_outcomes.py",
        ),
    ),
    Module(
        "attempts",
        "reconciler/live/apply.py",
        (
            "tests/live/test_apply.py",
            "tests/live/test_apply_attempts.py",
            "tests/live/test_apply_mutants.py",
            "tests/live/test_apply_guard.py",
        ),
    ),
)

KILLED = frozenset({"killed", "timeout", "caught by type check"})
NOT_RUN = frozenset({"skipped"})


@dataclass
class Mutant:
    """One mutant's verdict and, for the ones that lived, what it changed."""

    name: str
    status: str
    line: int | None = None
    before: str = ""
    after: str = ""
    why_equivalent: str | None = None


@dataclass
class ModuleResult:
    module: Module
    mutants: list[Mutant] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def killed(self) -> int:
        return sum(m.status in KILLED for m in self.mutants)

    @property
    def equivalent(self) -> list[Mutant]:
        return [m for m in self.lived if m.why_equivalent]

    @property
    def lived(self) -> list[Mutant]:
        return [m for m in self.mutants if m.status not in KILLED | NOT_RUN]

    @property
    def counted(self) -> int:
        """Mutants the score is out of: all run ones but the equivalent."""
        run = sum(m.status not in NOT_RUN for m in self.mutants)
        return run - len(self.equivalent)

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.counted if self.counted else 100.0


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _pyproject_for(module: Module) -> str:
    """The project's pyproject.toml with a ``[tool.mutmut]`` table for ``module`` alone."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    table = dict(tomllib.loads(text).get("tool", {}).get("mutmut", {}))
    table["only_mutate"] = [module.source]
    table["pytest_add_cli_args_test_selection"] = [t for t in module.tests if (ROOT / t).exists()]
    # Drop the project's own table (header to the next header), then add this module's.
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    lines = "".join(f"{key} = {_toml_value(value)}\n" for key, value in table.items())
    return text.rstrip("\n") + "\n\n[tool.mutmut]\n" + lines


def _prepare(module: Module) -> Path:
    work = WORK / module.name
    shutil.rmtree(work, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
    for folder in ("reconciler", "tests"):
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    (work / "pyproject.toml").write_text(_pyproject_for(module), encoding="utf-8")
    return work


def _mutmut(work: Path, *args: str, log: Path | None = None) -> str:
    command = [str(Path(sys.executable).parent / "mutmut"), *args]
    if log is None:
        return subprocess.run(command, cwd=work, check=True, capture_output=True, text=True).stdout
    with log.open("w", encoding="utf-8") as out:
        subprocess.run(command, cwd=work, check=True, stdout=out, stderr=subprocess.STDOUT)
    return ""


def _changed_lines(diff: str) -> tuple[str, str]:
    """The removed and added source lines of a mutant's unified diff, stripped."""
    removed = [x[1:].strip() for x in diff.splitlines() if x.startswith("-") and x[1:2] != "-"]
    added = [x[1:].strip() for x in diff.splitlines() if x.startswith("+") and x[1:2] != "+"]
    return " / ".join(removed), " / ".join(added)


def _line_number(source: Sequence[str], function: str, text: str) -> int | None:
    """Where ``text`` (one source line, stripped) first appears after ``def function``."""
    first = text.split(" / ")[0]
    start = next(
        (i for i, line in enumerate(source) if re.match(rf"\s*def {re.escape(function)}\(", line)),
        0,
    )
    for i in range(start, len(source)):
        if source[i].strip() == first:
            return i + 1
    return None


def _function_of(mutant_name: str) -> str:
    """``reconciler.api.signing.x_canonical_uri__mutmut_3`` -> ``canonical_uri`` (methods:
    ``xǁClassǁmethod__mutmut_1`` -> ``method``)."""
    tail = mutant_name.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0]
    return tail.split("ǁ")[-1] if "ǁ" in tail else tail.removeprefix("x_")


def _equivalents() -> list[Mapping[str, str]]:
    if not EQUIVALENT.exists():
        return []
    entries: list[Mapping[str, str]] = tomllib.loads(EQUIVALENT.read_text(encoding="utf-8")).get(
        "equivalent", []
    )
    return entries


def _judge(module: Module, mutant: Mutant, judged: Iterable[Mapping[str, str]]) -> None:
    """Match a survivor to a judgement by its function and its mutated line, not its number
    (numbers shift whenever the function changes)."""
    function = _function_of(mutant.name)
    for entry in judged:
        if (
            entry.get("module") == module.name
            and entry.get("function") == function
            and entry.get("mutated") == mutant.after
        ):
            mutant.why_equivalent = entry["why"]
            return


def run_module(module: Module, workers: int) -> ModuleResult:
    """Mutate one module in a fresh copy of the tree; the verdicts are kept in its result.json."""
    started = time.monotonic()
    work = _prepare(module)
    log = work / "mutmut.log"
    try:
        _mutmut(work, "run", "--max-children", str(workers), log=log)
    except subprocess.CalledProcessError:
        print(f"mutmut failed for {module.source}; see {log}", file=sys.stderr)
        raise
    result = ModuleResult(module, seconds=time.monotonic() - started)
    source = (work / module.source).read_text(encoding="utf-8").splitlines()
    for line in _mutmut(work, "results", "--all", "true").splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep or "__mutmut_" not in name:
            continue
        mutant = Mutant(name, status)
        if status not in KILLED | NOT_RUN:
            mutant.before, mutant.after = _changed_lines(_mutmut(work, "show", name))
            mutant.line = _line_number(source, _function_of(name), mutant.before)
        result.mutants.append(mutant)
    saved = {"seconds": result.seconds, "mutants": [asdict(m) for m in result.mutants]}
    (work / "result.json").write_text(json.dumps(saved, indent=1), encoding="utf-8")
    return _judged(result)


def _judged(result: ModuleResult) -> ModuleResult:
    judged = _equivalents()
    for mutant in result.lived:
        mutant.why_equivalent = None
        _judge(result.module, mutant, judged)
    return result


def load_result(module: Module) -> ModuleResult | None:
    """The last run's verdicts for ``module`` (judged anew), or None when it never ran."""
    path = WORK / module.name / "result.json"
    if not path.exists():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    mutants = [Mutant(**m) for m in saved["mutants"]]
    return _judged(ModuleResult(module, mutants, saved["seconds"]))


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`" if text else ""


def _mutmut_version() -> str:
    try:
        return metadata.version("mutmut")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def render(results: Sequence[ModuleResult], workers: int) -> str:
    out = [
        "# Mutation baseline",
        "",
        "Written by `make mutation` (tools/mutation.py): mutmut 3 on each core module against",
        f"its own unit tests, {workers} worker(s).  Score = killed / (mutants - equivalent); the",
        f"target is {TARGET_SCORE:.0f}% each.  A survivor is *equivalent* when no caller, request",
        "or plan could tell it from the original (reasons: tools/mutation_equivalent.toml).",
        f"Last written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with mutmut {_mutmut_version()}; a",
        "survivor's line is where its original line first appears in its function.",
        "",
        "| module | mutants | killed | equivalent | not killed | score |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        not_killed = len(r.lived) - len(r.equivalent)
        out.append(
            f"| {r.module.source} | {len(r.mutants)} | {r.killed} | {len(r.equivalent)} "
            f"| {not_killed} | {r.score:.1f}% |"
        )
    for r in results:
        if not r.lived:
            continue
        out += [
            "",
            f"## {r.module.source}",
            "",
            "| line | mutant | original | mutated | verdict |",
            "|---:|---|---|---|---|",
        ]
        for m in sorted(r.lived, key=lambda m: (m.line or 0, m.name)):
            verdict = (
                f"equivalent: {m.why_equivalent}"
                if m.why_equivalent
                else f"**{m.status}, not judged equivalent**"
            )
            short = m.name.rsplit(".", 1)[-1]
            out.append(
                f"| {m.line or '?'} | {short} | {_cell(m.before)} | {_cell(m.after)} | {verdict} |"
            )
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("modules", nargs="*", help="module names (default: all, diff last)")
    parser.add_argument("--workers", type=int, default=2, help="mutmut children (default 2)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the baseline from the last runs' verdicts, judged anew, without mutating",
    )
    args = parser.parse_args(argv)
    known = {m.name: m for m in MODULES}
    unknown = [name for name in args.modules if name not in known]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [m for m in MODULES if not args.modules or m.name in args.modules]
    if not args.report_only:
        for module in chosen:
            print(f"mutating {module.source} against {', '.join(module.tests)} ...", flush=True)
            run_module(module, args.workers)
    # The baseline covers every module with a result, also those run before this call.
    results = [r for r in map(load_result, MODULES) if r is not None]
    for result in results:
        print(
            f"  {result.module.source}: {result.score:.1f}% ({result.killed} killed of "
            f"{result.counted}; {len(result.equivalent)} equivalent excluded; "
            f"mutated in {result.seconds:.0f} s)",
            flush=True,
        )
    BASELINE.write_text(render(results, args.workers), encoding="utf-8")
    print(f"wrote {BASELINE.relative_to(ROOT)}")
    low = [r.module.source for r in results if r.score < TARGET_SCORE]
    if low:
        print(f"below {TARGET_SCORE:.0f}%: {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
