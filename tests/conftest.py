"""Shared fixtures.

Emulator fixtures (see docs/emulator.md):

* ``emulator(assets=None, **options)``: a factory; each call starts a real emulator on a free
  127.0.0.1 port (options as ``reconciler.emulator.testing.run_emulator``); all stop at teardown.
* ``demo_emulator``: one emulator seeded with ``demo_assets()`` (project ``p-test``).
* ``demo_project``: one per test module: a ``cli_process.DemoProject`` (the demo emulator and a
  copy of ``manifests/``) to run the console script against.
* ``emulator_env``: the environment variables of ``demo_emulator`` set with monkeypatch, so the
  CLI and the client reach it (region cn-north-4, endpoint through the SDK's override variable
  ``HUAWEICLOUD_SDK_REGION_METASTUDIO_CN_NORTH_4``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from cli_process import DemoProject, demo_project_in

from reconciler.emulator.demo_seed import demo_assets
from reconciler.emulator.testing import EmulatorFactory, RunningEmulator, run_emulator

pytest_plugins = ["pg_server"]  # postgres_server, postgres_url: a real PostgreSQL server


@pytest.fixture
def emulator() -> Iterator[EmulatorFactory]:
    with ExitStack() as stack:

        def start(assets: list[dict[str, Any]] | None = None, **options: Any) -> RunningEmulator:
            return stack.enter_context(run_emulator(assets, **options))

        yield start


@pytest.fixture
def demo_emulator(emulator: EmulatorFactory) -> RunningEmulator:
    return emulator(demo_assets("p-test"))


@pytest.fixture
def emulator_env(
    demo_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> RunningEmulator:
    for name in (
        "HW_ACCESS_KEY",
        "HW_SECRET_KEY",
        "HW_SECURITY_TOKEN",
        "HW_PROJECT_ID",
        "HW_AUTH_TOKEN",
        "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in demo_emulator.env().items():
        monkeypatch.setenv(name, value)
    return demo_emulator


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProject]:
    with demo_project_in(tmp_path_factory.mktemp("project")) as project:
        yield project
