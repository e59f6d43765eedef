"""CPU cost of the diff alone (no I/O): ``python -m bench.engine_diff [N]``.

Planning should be bound by the service's rate limits, not by our code (docs/performance.md); this
prints the CPU time per asset of ``diff_asset`` (including the live fingerprint) for assets that
are in sync (the common case) and for assets with a nested change.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from reconciler.emulator import samples
from reconciler.engine.diff import Desired, diff_asset


def live(i: int) -> dict[str, Any]:
    return samples.human_model(f"a{i}", asset_name=f"Asset {i}", project_id="p")


def spec(i: int, support_live: bool) -> dict[str, Any]:
    return {
        "asset_name": f"Asset {i}",
        "asset_description": "Virtual employee",
        "tags": ["FEMALE", "NEWS"],
        "asset_order": 3,
        "asset_extra_meta": {
            "human_model_2d_meta": {"support_live": support_live, "device_names": ["d2", "d1"]}
        },
        "system_properties": {"BACKGROUND_IMG": "Yes"},
    }


def measure(n: int, changed: bool) -> float:
    pairs = [(Desired(f"a{i}", spec(i, changed)), live(i)) for i in range(n)]
    start = time.process_time()
    for desired, raw in pairs:
        diff_asset(desired, raw)
    return (time.process_time() - start) / n


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    for label, changed in (("in sync", False), ("nested change", True)):
        print(f"{label:>14}: {measure(n, changed) * 1e6:7.1f} us CPU per asset ({n} assets)")


if __name__ == "__main__":
    main()
