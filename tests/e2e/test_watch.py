"""``reconciler watch`` as a real process against the emulator over real sockets.

Each test starts the emulator on loopback and one or more ``python -m reconciler watch``
processes with short intervals, then changes the live project behind their backs and watches
what the processes serve (``/metrics``, ``/healthz``), log (JSON lines), write (the emulator's
request log) and record (the drift history in the state file).
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cli_process import clean_env

from bench.process import free_port
from reconciler.emulator.testing import EmulatorFactory, RunningEmulator, run_emulator
from reconciler.state import History, Resolution
from reconciler.state.sqlite import SqliteStore

pytestmark = pytest.mark.e2e

T = TypeVar("T")


def asset_id(n: int) -> str:
    return f"{n:08d}-0000-4000-8000-000000000000"


A0, A1, A2 = asset_id(0), asset_id(1), asset_id(2)


def live_assets(count: int) -> list[dict[str, Any]]:
    return [
        {
            "asset_id": asset_id(n),
            "asset_name": f"Clip {n}",
            "asset_description": f"Clip number {n}",
            "asset_type": "VIDEO",
            "asset_state": "ACTIVED",
            "tags": ["NEWS"],
        }
        for n in range(count)
    ]


def write_manifests(
    root: Path, assets: list[dict[str, Any]], overrides: Mapping[str, dict[str, Any]] | None = None
) -> None:
    """One manifest per asset, in sync with ``assets`` but for ``overrides`` (by asset id)."""
    folder = root / "manifests"
    folder.mkdir(exist_ok=True)
    for asset in assets:
        spec = {
            "asset_name": asset["asset_name"],
            "asset_description": asset["asset_description"],
            "tags": asset["tags"],
            **(overrides or {}).get(asset["asset_id"], {}),
        }
        document = {
            "apiVersion": "reconciler.metastudio/v1",
            "kind": "DigitalAsset",
            "metadata": {"asset_id": asset["asset_id"]},
            "spec": spec,
        }
        (folder / f"{asset['asset_id'][:8]}.yaml").write_text(json.dumps(document, indent=2))


def until(check: Callable[[], T | None], timeout: float, what: str, step: float = 0.05) -> T:
    """``check()``'s first truthy value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


@dataclass
class Watch:
    """One running ``reconciler watch`` process."""

    proc: subprocess.Popen[bytes]
    stderr: Path
    port: int | None
    started: float = field(default_factory=time.monotonic)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def health(self) -> int | None:
        try:
            return httpx.get(self.url("/healthz"), timeout=2).status_code
        except httpx.HTTPError:
            return None

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of one sample of ``/metrics``, or None when it is not there (yet)."""
        try:
            text = httpx.get(self.url("/metrics"), timeout=2).text
        except httpx.HTTPError:
            return None
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            match = re.fullmatch(r"([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)", line)
            if match and match.group(1) == name:
                have = ",".join(sorted((match.group(2) or "").split(","))) if labels else ""
                if have == want:
                    return float(match.group(3))
        return None

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        """The JSON log lines so far (of one ``event`` kind)."""
        lines = self.stderr.read_text(errors="replace").splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [e for e in entries if event is None or e.get("event") == event]

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


class Runner:
    """Starts watch processes (and one-shot commands) in one working folder."""

    def __init__(self, root: Path, emu: RunningEmulator, stack: ExitStack) -> None:
        self.root = root
        self.stack = stack
        self.env = clean_env({**emu.env(), "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
        self.count = 0

    def watch(self, *args: str, metrics: bool = True) -> Watch:
        self.count += 1
        port = free_port() if metrics else None
        stderr = self.root / f"watch-{self.count}.log"
        argv = [sys.executable, "-m", "reconciler", "--log-format", "json", "watch", "manifests"]
        argv += [*args, *(["--metrics-addr", f"127.0.0.1:{port}"] if port else [])]
        with stderr.open("wb") as err:
            proc = subprocess.Popen(
                argv, cwd=self.root, env=self.env, stdout=subprocess.DEVNULL, stderr=err
            )
        watch = Watch(proc, stderr, port)
        self.stack.callback(_kill, proc)
        return watch

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    @contextmanager
    def history(self) -> Iterator[History]:
        with SqliteStore(self.root / ".reconciler" / "state.sqlite") as store:
            yield store.history


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def puts(emu: RunningEmulator, asset: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in emu.requests()
        if e.get("method") == "PUT" and (asset is None or str(e.get("path", "")).endswith(asset))
    ]


def project(
    root: Path,
    emulator: EmulatorFactory,
    stack: ExitStack,
    count: int,
    overrides: Mapping[str, dict[str, Any]] | None = None,
) -> tuple[RunningEmulator, Runner]:
    """An emulator with ``count`` assets, manifests in sync with them (but ``overrides``), and
    a runner in ``root``."""
    assets = live_assets(count)
    emu = emulator(assets)
    write_manifests(root, assets, overrides)
    return emu, Runner(root, emu, stack)


def healthy(watch: Watch) -> bool:
    return watch.health() == 200


def test_an_out_of_band_edit_shows_in_metrics_within_two_intervals_and_in_drift(
    tmp_path: Path, emulator: EmulatorFactory, stack: ExitStack
) -> None:
    emu, runner = project(tmp_path, emulator, stack, 3)
    watch = runner.watch("--interval", "1s")
    until(lambda: healthy(watch), 20, "the first successful cycle")
    assert watch.metric("reconciler_assets_managed", target="default") == 3
    assert watch.metric("reconciler_assets_drifted", target="default") == 0

    edited = time.monotonic()
    emu.store.patch(A1, {"asset_name": "Edited in the console"})
    until(
        lambda: watch.metric("reconciler_assets_drifted", target="default") == 1,
        5,
        "the drift in /metrics",
        step=0.02,
    )
    assert time.monotonic() - edited <= 2.0  # two intervals
    assert (watch.metric("reconciler_requests_total", api="list", code="200") or 0) >= 2
    assert (watch.metric("reconciler_cycles_total", result="success") or 0) >= 2
    last = watch.metric("reconciler_last_success_timestamp_seconds")
    assert last is not None and abs(time.time() - last) < 5
    assert watch.metric("reconciler_cycle_duration_seconds_count") is not None

    report = runner.run("drift", "manifests", "--format", "json")
    assert report.returncode == 2, report.stderr
    rows = {a["asset_id"]: a for a in json.loads(report.stdout)["projects"][0]["assets"]}
    assert rows[A1]["drifted_since"] is not None and rows[A1]["drift_cycles"] >= 1
    assert rows[A0]["drifted_since"] is None

    emu.store.patch(A1, {"asset_name": "Clip 1"})  # put back outside the tool
    until(
        lambda: watch.metric("reconciler_assets_drifted", target="default") == 0,
        5,
        "the drift to end",
    )
    assert watch.stop() == 0
    opened = [e for e in watch.events("drift-opened") if e["asset_id"] == A1]
    assert opened and opened[0]["fields"] == ["asset_name"]
    with runner.history() as history:
        (episode,) = history.episodes(emu.project_id, A1)
    assert episode.resolution is Resolution.OUT_OF_BAND
    assert episode.fields == ("asset_name",)
    cycles = watch.events("cycle")
    assert cycles and {"cycle", "duration_seconds", "managed", "drifted"} <= cycles[-1].keys()


def test_healthz_turns_503_when_the_service_goes_away_and_200_when_it_returns(
    tmp_path: Path, stack: ExitStack
) -> None:
    assets = live_assets(2)
    write_manifests(tmp_path, assets)
    port = free_port()
    db = tmp_path / "live.sqlite"
    service = ExitStack()
    stack.callback(service.close)
    emu = service.enter_context(run_emulator(assets, port=port, db_path=db))
    runner = Runner(tmp_path, emu, stack)
    runner.env["HW_MAX_RETRIES"] = "0"
    watch = runner.watch("--interval", "1s")
    until(lambda: healthy(watch), 20, "the first successful cycle")

    service.close()  # the service goes away
    gone = time.monotonic()
    until(lambda: watch.health() == 503, 6, "/healthz to turn 503")
    assert time.monotonic() - gone < 4.0  # two intervals after the last success, and a cycle
    assert watch.proc.poll() is None  # failed cycles do not end the process
    assert (watch.metric("reconciler_cycles_total", result="failure") or 0) >= 1
    detail = httpx.get(watch.url("/healthz")).json()
    assert detail["status"] == "unhealthy" and "cannot reach MetaStudio" in detail["last_error"]

    with run_emulator(None, port=port, db_path=db):  # and comes back at the same address
        until(lambda: healthy(watch), 6, "/healthz to return to 200")
        assert watch.stop() == 0
    failures = [e for e in watch.events("cycle") if e["result"] == "failure"]
    assert failures and "cannot reach MetaStudio" in failures[0]["error"]


def test_history_survives_a_restart(
    tmp_path: Path, emulator: EmulatorFactory, stack: ExitStack
) -> None:
    emu, runner = project(
        tmp_path, emulator, stack, 2, {A0: {"asset_description": "Declared in git"}}
    )
    first = runner.run("watch", "manifests", "--once")
    assert first.returncode == 2, first.stderr
    with runner.history() as history:
        before = history.open_episodes(emu.project_id)[A0]
    second = runner.run("watch", "manifests", "--once")
    assert second.returncode == 2, second.stderr
    with runner.history() as history:
        after = history.open_episodes(emu.project_id)[A0]
    assert after.first_seen == before.first_seen
    assert (before.cycles, after.cycles) == (1, 2)
    assert after.fields == ("asset_description",)
    report = runner.run("drift", "manifests", "--format", "markdown")
    assert f"drifted since {before.first_seen} (2 checks)" in html.unescape(report.stdout)


def test_self_heal_restores_the_declared_value(
    tmp_path: Path, emulator: EmulatorFactory, stack: ExitStack
) -> None:
    emu, runner = project(tmp_path, emulator, stack, 3)
    watch = runner.watch("--interval", "1s", "--self-heal")
    until(lambda: healthy(watch), 20, "the first successful cycle")
    emu.clear_requests()
    emu.store.patch(A2, {"asset_description": "Changed by hand"})
    until(
        lambda: emu.store.get(A2)["asset_description"] == "Clip number 2",  # type: ignore[index]
        5,
        "the heal",
    )
    until(lambda: watch.metric("reconciler_self_heal_total", result="healed") == 1, 3, "metric")
    assert [e.get("body") for e in puts(emu)] == [{"asset_description": "Clip number 2"}]
    assert watch.stop() == 0
    with runner.history() as history:
        (episode,) = history.episodes(emu.project_id, A2)
    assert episode.resolution is Resolution.SELF_HEAL


def test_self_heal_stops_at_the_safety_threshold_and_says_why(
    tmp_path: Path, emulator: EmulatorFactory, stack: ExitStack
) -> None:
    emu, runner = project(tmp_path, emulator, stack, 12)
    for n in range(5):  # 5 of 12 managed assets: above 30%
        emu.store.patch(asset_id(n), {"asset_name": f"Renamed {n}"})
    done = runner.run("--log-format", "json", "watch", "manifests", "--once", "--self-heal")
    assert done.returncode == 2, done.stderr
    assert puts(emu) == []
    refused = [json.loads(x) for x in done.stderr.splitlines() if '"heal-refused"' in x]
    assert refused and "5 of 12 managed assets" in refused[0]["message"]
    assert "safety threshold" in refused[0]["message"]
    assert "Traceback" not in done.stderr


def test_self_heal_uses_the_configured_safety_threshold(
    tmp_path: Path, emulator: EmulatorFactory, stack: ExitStack
) -> None:
    """2 of 12 (17%) is under the default 30%, but above the 10% reconciler.yaml sets."""
    emu, runner = project(tmp_path, emulator, stack, 12)
    (tmp_path / "reconciler.yaml").write_text("safety: {max_change_percent: 10}\n")
    for n in range(2):
        emu.store.patch(asset_id(n), {"asset_name": f"Renamed {n}"})
    done = runner.run("--log-format", "json", "watch", "manifests", "--once", "--self-heal")
    assert done.returncode == 2, done.stderr
    assert puts(emu) == []
    refused = [json.loads(x) for x in done.stderr.splitlines() if '"heal-refused"' in x]
    assert refused and "2 of 12 managed assets (17%)" in refused[0]["message"]
    assert "10% safety threshold" in refused[0]["message"]


def test_a_heal_that_fails_is_retried_with_growing_backoff(
    tmp_path: Path, emulator: EmulatorFactory, stack: ExitStack
) -> None:
    # The service refuses this type for a tenant: every heal of asset 0 fails (400).
    emu, runner = project(tmp_path, emulator, stack, 2, {A0: {"asset_type": "HUMAN_MODEL_2D"}})
    emu.store.patch(A1, {"tags": ["SPORTS"]})  # healable drift beside it
    watch = runner.watch(
        "--interval", "200ms", "--self-heal", "--heal-backoff", "600ms", "--heal-backoff-max", "1m"
    )
    until(lambda: len(puts(emu, A0)) >= 3, 15, "three heal attempts of the refused asset")
    cycles_seen = len(watch.events("cycle"))
    assert watch.stop() == 0
    failed = watch.events("heal-failed")
    assert [e["backoff_seconds"] for e in failed[:3]] == [0.6, 1.2, 2.4]
    assert len(puts(emu, A0)) <= 4 < cycles_seen  # not once per cycle
    assert [e.get("body") for e in puts(emu, A1)] == [{"tags": ["NEWS"]}]  # healed once


def test_sigterm_ends_the_process_promptly_and_lets_requests_in_flight_finish(
    tmp_path: Path, emulator: EmulatorFactory, stack: ExitStack
) -> None:
    emu, runner = project(tmp_path, emulator, stack, 2)

    idle = runner.watch("--interval", "1h")
    until(lambda: healthy(idle), 20, "the first successful cycle")
    sent = time.monotonic()
    assert idle.stop(timeout=5) == 0
    assert time.monotonic() - sent < 2

    emu.set_faults(latency_ms=1500)
    emu.clear_requests()
    busy = runner.watch("--interval", "1h")
    until(lambda: busy.events("started"), 20, "the watcher to start")
    time.sleep(0.5)  # its first listing is now waiting on the slow service
    sent = time.monotonic()
    assert busy.stop(timeout=8) == 0
    assert time.monotonic() - sent < 5
    assert busy.events("stopping")
    assert [e["status"] for e in emu.requests()] == [200]  # the request in flight finished


def test_two_self_healing_watchers_do_not_both_write(
    tmp_path: Path, emulator: EmulatorFactory, stack: ExitStack
) -> None:
    emu, runner = project(tmp_path, emulator, stack, 3)
    emu.store.patch(A0, {"asset_name": "Edited"})

    # While another writer holds the project's lock, a heal sends nothing and names it.
    with (
        SqliteStore(tmp_path / ".reconciler" / "state.sqlite") as store,
        store.locks.hold(emu.base_url, emu.project_id, command="apply"),
    ):
        done = runner.run("watch", "manifests", "--once", "--self-heal")
    assert done.returncode == 2
    assert puts(emu) == []
    assert f"locked by apply (pid {os.getpid()}" in done.stderr

    first = runner.watch("--interval", "300ms", "--self-heal")
    second = runner.watch("--interval", "300ms", "--self-heal")
    until(lambda: healthy(first) and healthy(second), 20, "both watchers")
    until(lambda: emu.store.get(A0)["asset_name"] == "Clip 0", 5, "the heal")  # type: ignore[index]
    emu.store.patch(A1, {"asset_name": "Edited too"})
    until(lambda: emu.store.get(A1)["asset_name"] == "Clip 1", 5, "the heal")  # type: ignore[index]
    time.sleep(1)  # a few more cycles of both
    assert first.stop() == 0 and second.stop() == 0
    assert len(puts(emu, A0)) == 1
    assert len(puts(emu, A1)) == 1
