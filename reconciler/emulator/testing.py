"""Run the real emulator (uvicorn, real socket on 127.0.0.1) inside a test or a script.

with run_emulator([asset, ...]) as emu:
    httpx.get(f"{emu.base_url}/v1/{emu.project_id}/digital-assets", headers=...)
    emu.store.patch(asset_id, {"asset_name": "edited"})   # out-of-band edit
    emu.set_faults(fail_rate=0.2)
    emu.requests()                                         # the request log, parsed
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from reconciler.api import signing
from reconciler.api.auth import Credentials
from reconciler.api.client import MetaStudioClient, RetryPolicy
from reconciler.api.config import RateLimits, Target
from reconciler.emulator.app import EmulatorState, create_app
from reconciler.emulator.config import (
    Behaviour,
    EditOnPut,
    EmulatorConfig,
    Faults,
    ListMutation,
    LostAnswer,
    PutFault,
    TimedEdit,
)
from reconciler.emulator.server import BackgroundServer
from reconciler.emulator.store import AssetStore


@dataclass
class RunningEmulator:
    """A started emulator: where it listens, what it accepts, and handles to change it live."""

    base_url: str
    project_id: str
    ak: str
    sk: str
    token: str | None
    security_token: str | None
    record_path: Path | None
    store: AssetStore
    state: EmulatorState
    _http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10, verify=False))

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def requests(self) -> list[dict[str, Any]]:
        """Entries of the request log so far (empty when recording is off)."""
        recorder = self.state.recorder
        return recorder.read() if recorder is not None else []

    def clear_requests(self) -> None:
        if self.state.recorder is not None:
            self.state.recorder.clear()

    def set_faults(
        self,
        *,
        latency_ms: float | None = None,
        jitter_ms: float | None = None,
        fail_rate: float | None = None,
        drop_rate: float | None = None,
    ) -> None:
        """Change injected faults for the following requests (arguments left None are kept)."""
        current = self.state.config.faults
        updated = Faults(
            latency_ms=current.latency_ms if latency_ms is None else latency_ms,
            jitter_ms=current.jitter_ms if jitter_ms is None else jitter_ms,
            fail_rate=current.fail_rate if fail_rate is None else fail_rate,
            drop_rate=current.drop_rate if drop_rate is None else drop_rate,
        )
        self.state.config.faults = updated

    def set_behaviour(
        self,
        *,
        list_omit: Sequence[str] | None = None,
        put_answer: str | None = None,
        ignore_sort_key: bool | None = None,
    ) -> None:
        """Change how list rows and PUT answers look, and whether list honours ``sort_key``,
        for the following requests."""
        current = self.state.config.behaviour
        self.state.config.behaviour = dataclasses.replace(
            current,
            list_omit=current.list_omit if list_omit is None else tuple(list_omit),
            put_answer=current.put_answer if put_answer is None else put_answer,
            ignore_sort_key=(
                current.ignore_sort_key if ignore_sort_key is None else ignore_sort_key
            ),
        )

    def set_update_time(self, asset_id: str, update_time: str) -> None:
        """Give ``asset_id`` this exact ``update_time`` (an edit stamped at a chosen instant:
        equal timestamps, a clock that is behind)."""

        def stamp(
            asset: dict[str, Any], hidden: dict[str, Any]
        ) -> tuple[dict[str, Any], dict[str, Any]]:
            return {**asset, "update_time": update_time}, hidden

        if self.store.update(asset_id, stamp) is None:
            raise KeyError(asset_id)

    def edit_on_put(
        self, asset_id: str, changes: Mapping[str, Any], *, after: str | None = None
    ) -> None:
        """Edit ``asset_id`` out of band once, right after the first PUT to ``after`` (any
        other asset when None) is stored and before it is answered."""
        self.state.config.behaviour.edits_on_put.append(EditOnPut(asset_id, dict(changes), after))

    def mutate_on_list(
        self,
        offset: int,
        *,
        delete: str | None = None,
        create: Mapping[str, Any] | None = None,
    ) -> None:
        """Delete asset ``delete``, or create the asset ``create`` (a record with an
        ``asset_id``), once, when the page at ``offset`` of the whole project is asked for,
        before it is read: an asset on no page while the project is paged."""
        mutation = ListMutation(offset, delete, None if create is None else dict(create))
        self.state.config.behaviour.list_mutations.append(mutation)

    def set_count_offset(self, offset: int) -> None:
        """Add ``offset`` to the ``count`` of every list answer from now on (a count lower or
        higher than the rows; never below 0)."""
        self.state.config.behaviour.count_offset = offset

    def fail_puts(
        self,
        status: int,
        *,
        times: int = 1,
        asset_id: str | None = None,
        retry_after: float | None = None,
        empty: bool = False,
    ) -> None:
        """Answer the next ``times`` PUTs to ``asset_id`` (any when None) with ``status`` before
        they reach the service (429 with ``Retry-After``; a 5xx with no body when ``empty``)."""
        self.state.config.behaviour.put_faults.append(
            PutFault(status, times, asset_id, retry_after, empty)
        )

    def lose_put_answers(
        self,
        mode: str = "drop",
        *,
        times: int = 1,
        asset_id: str | None = None,
        seconds: float = 0.0,
    ) -> None:
        """Apply the next ``times`` PUTs to ``asset_id`` (any when None), then lose the answer:
        ``drop`` the connection, ``delay`` it ``seconds``, or answer 504 (``gateway``)."""
        self.state.config.behaviour.lost_answers.append(LostAnswer(mode, times, asset_id, seconds))

    def edit_later(
        self,
        asset_id: str,
        changes: Mapping[str, Any],
        *,
        after: str | None,
        method: str = "PUT",
        delay: float = 0.0,
    ) -> None:
        """Edit ``asset_id`` out of band ``delay`` seconds after the first ``method`` request to
        asset ``after`` (the collection when None) has been answered."""
        self.state.config.behaviour.timed_edits.append(
            TimedEdit(asset_id, dict(changes), after, method, delay)
        )

    def set_rate_limits(self, limits: Mapping[str, float] | None) -> None:
        """New per-API limits in requests/second (None or {} = unlimited); buckets start full."""
        self.state.limiter.set_limits(limits or {})

    def assets_path(self, asset_id: str | None = None) -> str:
        """``/v1/{project_id}/digital-assets[/{asset_id}]`` for this emulator's project."""
        base = f"/v1/{self.project_id}/digital-assets"
        return base if asset_id is None else f"{base}/{asset_id}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        sign: bool = True,
        sk: str | None = None,
        date: datetime | None = None,
    ) -> httpx.Response:
        """One request signed as the official SDK signs it (``sign=False``: unsigned).

        ``sk`` signs with another secret and ``date`` sets X-Sdk-Date, to exercise auth failures.
        """
        body = content if content is not None else b""
        if json_body is not None:
            body = json.dumps(json_body).encode()
        sent: dict[str, str] = {
            "Content-Type": "application/json",
            "Host": self.base_url.split("://", 1)[1],
            "User-Agent": "reconciler-tests",
            "X-Project-Id": self.project_id,
        }
        sent.update(headers or {})
        if sign:
            sent[signing.DATE_HEADER] = signing.sdk_date(date)
            sent["Authorization"] = signing.authorization(
                self.ak, sk or self.sk, method, path, list(params), sent, body
            )
        query = signing.canonical_query(params)
        url = self.base_url + path + (f"?{query}" if query else "")
        return self._http.request(method, url, headers=sent, content=body)

    def client(self, *, parallelism: int = 4, retry: RetryPolicy | None = None) -> MetaStudioClient:
        """The project's own client pointed at this emulator, unpaced (the emulator's limits,
        when set, still answer 429)."""
        target = Target(
            name="emu",
            region=None,
            project_id=self.project_id,
            endpoint=self.base_url,
            rate_limits=RateLimits(list=0, show=0, update=0),
            timeout=5,
        )
        credentials = Credentials(ak=self.ak, sk=self.sk, project_id=self.project_id)
        return MetaStudioClient(target, credentials, parallelism=parallelism, retry=retry)

    def env(self) -> dict[str, str]:
        """Environment variables that point a client (or the CLI) at this emulator."""
        env = {
            "HUAWEICLOUD_SDK_AK": self.ak,
            "HUAWEICLOUD_SDK_SK": self.sk,
            "HUAWEICLOUD_SDK_PROJECT_ID": self.project_id,
            # The SDK's per-region endpoint override, which the client honours too.
            "HW_REGION_NAME": "cn-north-4",
            "HUAWEICLOUD_SDK_REGION_METASTUDIO_CN_NORTH_4": self.base_url,
        }
        if self.security_token:
            env["HUAWEICLOUD_SDK_SECURITY_TOKEN"] = self.security_token
        return env


# The type of the ``emulator`` pytest fixture: call it to start one more emulator.
EmulatorFactory = Callable[..., RunningEmulator]


@contextmanager
def run_emulator(
    assets: list[dict[str, Any]] | None = None,
    *,
    project_id: str = "p-test",
    ak: str = "test-ak",
    sk: str = "test-sk",
    token: str | None = None,
    security_token: str | None = None,
    rate_limits: Mapping[str, float] | None = None,
    latency_ms: float = 0,
    jitter_ms: float = 0,
    fail_rate: float = 0.0,
    drop_rate: float = 0.0,
    db_path: str | Path | None = None,
    record: bool = True,
    record_path: str | Path | None = None,
    random_seed: int | None = 0,
    list_omit: Sequence[str] = (),
    put_answer: str = "full",
    port: int = 0,
) -> Iterator[RunningEmulator]:
    """Start the emulator on a free 127.0.0.1 port, yield it, stop it.

    ``rate_limits`` None means unlimited (fast tests); pass
    ``reconciler.emulator.config.DEFAULT_RATE_LIMITS`` for the service's published limits.
    ``db_path`` keeps the data in a file across restarts; ``assets`` are seeded (replacing
    same-id rows).  The request log goes to ``record_path`` or a temporary file.  ``port`` 0
    picks a free port; a given one lets a test stop the service and start it again at the
    same address.
    """
    with tempfile.TemporaryDirectory(prefix="reconciler-emulator-") as tmp:
        log_path: Path | None = None
        if record:
            log_path = (
                Path(record_path) if record_path is not None else Path(tmp) / "requests.jsonl"
            )
        config = EmulatorConfig(
            project_id=project_id,
            ak=ak,
            sk=sk,
            token=token,
            security_token=security_token,
            rate_limits=dict(rate_limits or {}),
            faults=Faults(latency_ms, jitter_ms, fail_rate, drop_rate),
            record_path=log_path,
            random_seed=random_seed,
            behaviour=Behaviour(list_omit=tuple(list_omit), put_answer=put_answer),
        )
        store = AssetStore(db_path)
        try:
            if assets:
                store.seed(assets, project_id)
            app = create_app(config, store)
            server = BackgroundServer(app, port=port)
            server.start()
            running: RunningEmulator | None = None
            try:
                running = RunningEmulator(
                    base_url=f"http://{server.host}:{server.port}",
                    project_id=project_id,
                    ak=ak,
                    sk=sk,
                    token=token,
                    security_token=security_token,
                    record_path=log_path,
                    store=store,
                    state=app.state.emulator,
                )
                yield running
            finally:
                if running is not None:
                    running._http.close()
                server.stop()
        finally:
            store.close()
