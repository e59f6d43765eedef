"""The drift report as JSON: ``DriftReport.to_json()``, versioned by ``format_version``."""

from __future__ import annotations

import json

from reconciler.engine.drift import DriftReport


def render(report: DriftReport) -> str:
    """Indented UTF-8 JSON ending in a newline; the format is documented in docs/drift.md."""
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
