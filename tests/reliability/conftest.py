"""Fixtures of the reliability suite (the helpers live in harness.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .harness import Project, make_project_in


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Project]:
    """Factory: ``make_project(n=..., drift_ratio=...)`` in a fresh directory."""
    count = 0

    def make(**kwargs: Any) -> Project:
        nonlocal count
        count += 1
        root = tmp_path / f"project-{count}"
        root.mkdir()
        return make_project_in(root, **kwargs)

    return make


@pytest.fixture
def project(make_project: Callable[..., Project]) -> Project:
    return make_project()
