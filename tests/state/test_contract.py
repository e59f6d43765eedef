"""The state interface's contract, on every backend (the ``store`` fixture's params): what a
run may rely on whichever store holds its state.

* write-only records: remembered per (project, asset), the latest apply wins;
* locks per (endpoint, project): one holder, named; waiting; checked before each write; listed;
  removed by hand;
* drift history: episodes open, count, and close with how they ended; and the helpers
  ``state migrate`` copies a state with.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.state import (
    Episode,
    LockHeld,
    LockHolder,
    LockLost,
    Observation,
    Record,
    Resolution,
    StateStore,
)
from reconciler.state.sqlite import SqliteStore

E, P = "https://metastudio.example.com", "p1"
OTHER = "https://other.example.com"
T0 = "2026-01-01T00:00:00Z"


# --- write-only records ---------------------------------------------------------------------------


def test_a_fresh_state_has_no_records(store: StateStore) -> None:
    assert store.records.get("p", "a") is None
    assert store.records.get_many("p", ["a", "b"]) == {}
    assert list(store.records.all_records()) == []


def test_record_then_get_survives_another_connection(
    store: StateStore, reopen: Callable[[], StateStore]
) -> None:
    written = store.records.record("p1", "a1", "review_config:abc", "2025-03-01T10:00:00Z")
    assert written == Record("review_config:abc", "2025-03-01T10:00:00Z")
    store.records.record("p1", "a1", "review_config:def")  # overwrite: the latest apply wins
    store.records.record("p2", "a1", "review_config:other")
    store.close()
    later = reopen()
    record = later.records.get("p1", "a1")
    assert record is not None
    assert record.fingerprint == "review_config:def"
    assert record.applied_at.endswith("Z") and record.applied_at != "2025-03-01T10:00:00Z"
    other = later.records.get("p2", "a1")
    assert other is not None and other.fingerprint == "review_config:other"
    assert later.records.get("p1", "missing") is None


def test_get_many_reads_beyond_one_sql_batch(store: StateStore) -> None:
    for i in range(1200):
        store.records.record("p", f"a{i}", f"fp{i}", applied_at="2025-01-01T00:00:00Z")
    found = store.records.get_many("p", [f"a{i}" for i in range(1300)])
    assert len(found) == 1200
    assert found["a1199"] == Record("fp1199", "2025-01-01T00:00:00Z")
    assert store.records.get_many("other", ["a1"]) == {}


def test_concurrent_writers_in_one_process(store: StateStore) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: store.records.record("p", f"a{i}", f"fp{i}"), range(200)))
    found = store.records.get_many("p", [f"a{i}" for i in range(200)])
    assert {asset_id: r.fingerprint for asset_id, r in found.items()} == {
        f"a{i}": f"fp{i}" for i in range(200)
    }


def test_all_records_lists_every_project_and_asset(store: StateStore) -> None:
    store.records.record("p2", "b", "fp-b", "2025-01-02T00:00:00Z")
    store.records.record("p1", "a", "fp-a", "2025-01-01T00:00:00Z")
    store.records.record("p1", "a", "fp-a2", "2025-01-03T00:00:00Z")
    assert sorted(store.records.all_records()) == [
        ("p1", "a", Record("fp-a2", "2025-01-03T00:00:00Z")),
        ("p2", "b", Record("fp-b", "2025-01-02T00:00:00Z")),
    ]


# --- locks ----------------------------------------------------------------------------------------


def test_a_second_holder_is_refused_at_once_naming_the_first(
    store: StateStore, reopen: Callable[[], StateStore]
) -> None:
    other = reopen()
    with store.locks.hold(E, P, command="apply"):
        started = time.monotonic()
        with pytest.raises(LockHeld) as caught:
            other.locks.acquire(E + "/", P)  # a trailing slash is the same endpoint
        assert time.monotonic() - started < 5
        holder = caught.value.holder
        assert (holder.pid, holder.command) == (os.getpid(), "apply")
        assert holder.host and holder.since.endswith("Z")
        assert (caught.value.endpoint, caught.value.project_id) == (E, P)
        assert f"pid {os.getpid()}" in str(caught.value)
        assert "--lock-timeout" in str(caught.value)
        assert other.locks.holder(E, P) == holder
        assert other.locks.holder(E + "/", P) == holder
    assert other.locks.holder(E, P) is None
    other.locks.acquire(E, P)  # free again


def test_locks_are_per_endpoint_and_project(
    store: StateStore, reopen: Callable[[], StateStore]
) -> None:
    other = reopen()
    with (
        store.locks.hold(E, P, command="apply"),
        other.locks.hold(E, "p2", command="watch --self-heal"),
        other.locks.hold(OTHER, P, command="apply"),
    ):
        places = {(e.endpoint, e.project_id): e.holder.command for e in store.locks.entries()}
        assert places == {(E, P): "apply", (E, "p2"): "watch --self-heal", (OTHER, P): "apply"}
    assert store.locks.entries() == []
    assert store.locks.holder(E, "p2") is None


def test_waiting_takes_the_lock_once_it_is_released(
    store: StateStore, reopen: Callable[[], StateStore]
) -> None:
    held = store.locks.acquire(E, P)
    waits: list[LockHolder] = []
    threading.Timer(0.3, store.locks.release, args=(held,)).start()
    started = time.monotonic()
    second = reopen()
    with second.locks.hold(E, P, command="apply", timeout=10, on_wait=waits.append) as taken:
        assert time.monotonic() - started >= 0.2
        second.locks.check(taken)
    assert len(waits) == 1 and waits[0].pid == os.getpid()


def test_waiting_gives_up_after_the_timeout(
    store: StateStore, reopen: Callable[[], StateStore]
) -> None:
    with store.locks.hold(E, P), pytest.raises(LockHeld, match=r"waited 0\.\d+s") as caught:
        reopen().locks.acquire(E, P, timeout=0.3)
    assert "larger --lock-timeout" in str(caught.value)
    assert caught.value.waited >= 0.3


def test_release_only_removes_its_own_lock(store: StateStore) -> None:
    stale = store.locks.acquire(E, P)
    store.locks.release(stale)
    current = store.locks.acquire(E, P)
    store.locks.release(stale)  # an old handle does not free the new holder
    assert store.locks.holder(E, P) is not None
    store.locks.check(current)
    store.locks.release(current)
    assert store.locks.holder(E, P) is None


def test_check_passes_while_held_and_raises_once_the_lock_is_removed(
    store: StateStore, reopen: Callable[[], StateStore]
) -> None:
    held = store.locks.acquire(E, P, command="apply")
    store.locks.check(held)
    removed = reopen().locks.unlock(E, P)
    assert removed is not None and removed.command == "apply"
    with pytest.raises(LockLost, match=P):
        store.locks.check(held)
    # A new holder's lock is not the old one's either.
    reopen().locks.acquire(E, P)
    with pytest.raises(LockLost):
        store.locks.check(held)


def test_check_raises_after_release(store: StateStore) -> None:
    held = store.locks.acquire(E, P)
    store.locks.release(held)
    with pytest.raises(LockLost):
        store.locks.check(held)


def test_entries_list_every_holder_oldest_first(store: StateStore) -> None:
    assert store.locks.entries() == []
    store.locks.acquire(E, P, command="apply")
    store.locks.acquire(OTHER, "p2", command="watch --self-heal")
    entries = store.locks.entries()
    assert [(e.endpoint, e.project_id, e.holder.command) for e in entries] == [
        (E, P, "apply"),
        (OTHER, "p2", "watch --self-heal"),
    ]
    assert entries[0].holder.since <= entries[1].holder.since
    for entry in entries:
        assert entry.holder.pid == os.getpid()
        assert entry.alive is True  # a holder of this host that runs
        assert entry.holder == store.locks.holder(entry.endpoint, entry.project_id)


def test_unlock_removes_the_lock_whoever_holds_it_and_returns_the_holder(
    store: StateStore, reopen: Callable[[], StateStore]
) -> None:
    assert store.locks.unlock(E, P) is None  # nothing to remove
    with reopen().locks.hold(E, P, command="watch --self-heal"):
        holder = store.locks.holder(E, P)
        removed = store.locks.unlock(E + "/", P)
        assert removed is not None and removed == holder
        assert removed.command == "watch --self-heal"
        assert store.locks.holder(E, P) is None
        with store.locks.hold(E, P) as taken:  # free for the next writer at once
            store.locks.check(taken)
    assert store.locks.unlock(E, P) is None


# --- drift history --------------------------------------------------------------------------------


def drifted(
    asset_id: str, *fields: str, digest: str = "d1", status: str = "drifted"
) -> Observation:
    return Observation(asset_id, status, True, tuple(fields), digest)


def in_sync(asset_id: str, digest: str = "d1") -> Observation:
    return Observation(asset_id, "in-sync", False, (), digest)


def test_reading_before_anything_was_recorded_finds_nothing(store: StateStore) -> None:
    assert store.history.open_episodes(P) == {}
    assert store.history.open_episodes(P, ["a"]) == {}
    assert store.history.episodes(P, "a") == []
    assert list(store.history.all_episodes()) == []


def test_an_episode_counts_cycles_and_collects_fields(store: StateStore) -> None:
    history = store.history
    first = history.record_cycle(P, [drifted("a", "asset_name")], T0)
    assert first.opened == (Episode(P, "a", "drifted", T0, T0, 1, ("asset_name",), "d1"),)
    again = history.record_cycle(P, [drifted("a", "tags")], "2026-01-01T00:05:00Z")
    assert again.opened == () and again.resolved == ()
    episode = history.open_episodes(P)["a"]
    assert again.continued == (episode,)
    assert episode.first_seen == "2026-01-01T00:00:00Z"
    assert episode.last_seen == "2026-01-01T00:05:00Z"
    assert episode.cycles == 2
    assert episode.fields == ("asset_name", "tags")
    assert episode.open and episode.resolution is None


def test_in_sync_with_the_same_manifest_is_an_out_of_band_fix(store: StateStore) -> None:
    history = store.history
    history.record_cycle(P, [drifted("a", "asset_name")], "2026-01-01T00:00:00Z")
    changes = history.record_cycle(P, [in_sync("a")], "2026-01-01T00:05:00Z")
    (episode,) = history.episodes(P, "a")
    assert [e.resolution for e in changes.resolved] == [Resolution.OUT_OF_BAND]
    assert changes.resolved == (episode,)
    assert episode.resolved_at == "2026-01-01T00:05:00Z"
    assert episode.resolution is Resolution.OUT_OF_BAND
    assert history.open_episodes(P) == {}


def test_in_sync_after_the_manifest_changed_is_a_manifest_change(store: StateStore) -> None:
    store.history.record_cycle(P, [drifted("a", "asset_name", digest="old")], "t1")
    store.history.record_cycle(P, [in_sync("a", digest="new")], "t2")
    (episode,) = store.history.episodes(P, "a")
    assert episode.resolution is Resolution.MANIFEST_CHANGE


def test_an_asset_no_manifest_declares_any_more_is_a_manifest_change(store: StateStore) -> None:
    history = store.history
    history.record_cycle(P, [drifted("a", "tags"), drifted("b", "tags")], "t1")
    changes = history.record_cycle(P, [drifted("b", "tags")], "t2")
    assert [e.asset_id for e in changes.resolved] == ["a"]
    assert history.episodes(P, "a")[0].resolution is Resolution.MANIFEST_CHANGE
    assert set(history.open_episodes(P)) == {"b"}


def test_self_heal_closes_the_episode_and_a_new_drift_opens_another(store: StateStore) -> None:
    history = store.history
    history.record_cycle(P, [drifted("a", "tags")], "t1")
    closed = history.resolve(P, "a", Resolution.SELF_HEAL, "t2")
    assert closed is not None and closed.resolution is Resolution.SELF_HEAL
    assert closed.resolved_at == "t2"
    assert history.resolve(P, "a", Resolution.SELF_HEAL, "t3") is None
    history.record_cycle(P, [drifted("a", "asset_name")], "t4")
    episodes = history.episodes(P, "a")
    assert [(e.first_seen, e.resolution) for e in episodes] == [
        ("t1", Resolution.SELF_HEAL),
        ("t4", None),
    ]
    assert episodes[0] == closed


def test_an_asset_that_could_not_be_compared_keeps_its_episode_open(store: StateStore) -> None:
    history = store.history
    history.record_cycle(P, [drifted("a", "tags")], "t1")
    history.record_cycle(
        P, [Observation("a", "error", False), Observation("b", "error", False)], "t2"
    )
    assert history.open_episodes(P)["a"].cycles == 1
    assert "b" not in history.open_episodes(P)


def test_missing_and_blocked_assets_are_episodes_too(store: StateStore) -> None:
    store.history.record_cycle(P, [drifted("a", status="missing")], "t1")
    store.history.record_cycle(P, [drifted("a", "tags", status="drifted")], "t2")
    episode = store.history.open_episodes(P)["a"]
    assert (episode.status, episode.cycles, episode.first_seen) == ("drifted", 2, "t1")


def test_open_episodes_of_some_assets(store: StateStore) -> None:
    ids = [f"a{i}" for i in range(1200)]
    store.history.record_cycle(P, [drifted(a, "tags") for a in ids], "t1")
    wanted = [*ids[::2], "never-seen"]
    assert set(store.history.open_episodes(P, wanted)) == set(ids[::2])


def test_history_survives_reopening_and_projects_are_apart(
    store: StateStore, reopen: Callable[[], StateStore]
) -> None:
    store.history.record_cycle(P, [drifted("a", "tags")], "t1")
    store.history.record_cycle("p-2", [drifted("a", "asset_name")], "t1")
    store.close()
    history = reopen().history
    history.record_cycle(P, [drifted("a", "tags")], "t2")
    assert history.open_episodes(P)["a"].cycles == 2
    assert history.open_episodes("p-2")["a"].fields == ("asset_name",)


# --- migration helpers -------------------------------------------------------------------------


def _source(tmp_path: Path) -> SqliteStore:
    """A SQLite state with some history and records, as ``state migrate`` copies from."""
    source = SqliteStore(tmp_path / "source" / "state.sqlite")
    source.history.record_cycle(P, [drifted("a", "tags"), drifted("b", "asset_name")], "t1")
    source.history.resolve(P, "a", Resolution.SELF_HEAL, "t2")
    source.history.record_cycle(P, [drifted("a", "tags", digest="d2"), in_sync("b")], "t3")
    source.history.record_cycle("p-2", [drifted("c", status="missing")], "t3")
    source.records.record(P, "a", "fp-a", "2026-01-01T00:00:00Z")
    return source


def test_all_episodes_lists_every_episode_oldest_first(tmp_path: Path) -> None:
    with _source(tmp_path) as source:
        episodes = list(source.history.all_episodes())
    assert [(e.project_id, e.asset_id, e.first_seen, e.resolution) for e in episodes] == [
        (P, "a", "t1", Resolution.SELF_HEAL),
        (P, "b", "t1", Resolution.OUT_OF_BAND),
        (P, "a", "t3", None),
        ("p-2", "c", "t3", None),
    ]


def test_a_copy_of_every_episode_and_record_is_idempotent(
    store: StateStore, tmp_path: Path
) -> None:
    with _source(tmp_path) as source:
        episodes = list(source.history.all_episodes())
        records = list(source.records.all_records())
    assert [store.history.import_episode(e) for e in episodes] == [True] * 4
    for project_id, asset_id, record in records:
        store.records.record(project_id, asset_id, record.fingerprint, record.applied_at)
    copied = list(store.history.all_episodes())
    assert sorted(copied, key=repr) == sorted(episodes, key=repr)
    assert store.history.episodes(P, "a") == [episodes[0], episodes[2]]
    assert store.history.open_episodes(P) == {"a": episodes[2]}
    assert list(store.records.all_records()) == records
    # A second copy adds nothing.
    assert [store.history.import_episode(e) for e in episodes] == [False] * 4
    assert len(list(store.history.all_episodes())) == 4
    # The copied history goes on where it stopped.
    store.history.record_cycle(P, [drifted("a", "asset_name", digest="d2")], "t4")
    assert store.history.open_episodes(P)["a"].cycles == 2


def test_an_open_episode_is_not_copied_over_the_one_already_open(store: StateStore) -> None:
    store.history.record_cycle(P, [drifted("a", "tags")], "t5")
    here = store.history.open_episodes(P)["a"]
    older = replace(here, first_seen="t1", last_seen="t1", fields=("asset_name",))
    assert store.history.import_episode(older) is False
    assert store.history.episodes(P, "a") == [here]
    closed = older.closed(Resolution.OUT_OF_BAND, "t2")
    assert store.history.import_episode(closed) is True
    assert sorted(store.history.episodes(P, "a"), key=repr) == sorted([here, closed], key=repr)
    assert store.history.open_episodes(P) == {"a": here}
