"""What is wrong with the manifests of a run: every problem at once, each naming its place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.errors import ReconcilerError


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the manifests, rendered ``file:line:column: path: message``."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestError(ReconcilerError):
    """Every problem found in one load of the manifests."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{summary(self.problems)}\n{lines}")


def summary(problems: Sequence[Problem]) -> str:
    """``3 problems in 2 files.``"""
    files = len({problem.file for problem in problems})
    noun = "problem" if len(problems) == 1 else "problems"
    return f"{len(problems)} {noun} in {files} file{'' if files == 1 else 's'}."
