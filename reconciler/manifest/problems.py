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
    # About a path given to the run (a folder with no manifests, a path that does not exist),
    # not about a file's content: counted apart from "N problems in M files".
    about_path: bool = False

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestError(ReconcilerError):
    """Every problem found in one load of the manifests."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1 and self.problems[0].about_path:
            super().__init__(str(self.problems[0]))  # one line says it all
            return
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{summary(self.problems)}\n{lines}")


def summary(problems: Sequence[Problem]) -> str:
    """``3 problems in 2 files.``; problems with the paths given are counted as such:
    ``no manifests to read.``, ``2 problems in 1 file and 1 path.``"""
    in_files = [problem for problem in problems if not problem.about_path]
    paths = len({problem.file for problem in problems if problem.about_path})
    if not in_files:
        return "no manifests to read." if paths else "no problems."
    files = len({problem.file for problem in in_files})
    noun = "problem" if len(problems) == 1 else "problems"
    where = f"{files} file{'' if files == 1 else 's'}"
    if paths:
        where += f" and {paths} path{'' if paths == 1 else 's'}"
    return f"{len(problems)} {noun} in {where}."
