"""Start-up cost of the command line: ``python -m bench.startup [RUNS]``, part of ``make bench``.

The wall time of ``reconciler --help`` (imports no heavy library) and of ``reconciler validate``
on one manifest file (loads the manifest schema, pydantic and ruamel.yaml), each the median of
several runs of the console script as a fresh process.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RUNS = 7
MANIFEST = Path(__file__).resolve().parents[1] / "manifests" / "voice.yaml"
HEADER = "| command | median wall s | min s | max s | runs |"
RULE = "|---|---:|---:|---:|---:|"


@dataclass(frozen=True)
class StartupRow:
    command: str
    times: tuple[float, ...]

    def line(self) -> str:
        return (
            f"| `{self.command}` | {statistics.median(self.times):.3f} | {min(self.times):.3f} "
            f"| {max(self.times):.3f} | {len(self.times)} |"
        )


def console_script() -> str:
    script = Path(sys.executable).with_name("reconciler")
    return str(script) if script.exists() else "reconciler"


def time_command(args: list[str], runs: int, cwd: Path) -> tuple[float, ...]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            [console_script(), *args], cwd=cwd, capture_output=True, timeout=60, check=False
        )
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"reconciler {' '.join(args)} exited {done.returncode}")
    return tuple(times)


def measure(runs: int = RUNS) -> list[StartupRow]:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        work = Path(tmp)
        manifest = work / MANIFEST.name
        manifest.write_text(MANIFEST.read_text(encoding="utf-8"), encoding="utf-8")
        time_command(["--help"], 1, work)  # warm the file cache; not counted
        return [
            StartupRow("reconciler --help", time_command(["--help"], runs, work)),
            StartupRow(
                f"reconciler validate {manifest.name}",
                time_command(["validate", manifest.name], runs, work),
            ),
        ]


def report(rows: list[StartupRow]) -> str:
    return "\n".join(
        ["Start-up (console script, fresh process):", "", HEADER, RULE, *(r.line() for r in rows)]
    )


if __name__ == "__main__":
    print(report(measure(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)))
