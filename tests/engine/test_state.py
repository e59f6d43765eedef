"""The write-only state store: a real SQLite file, created on first write, shared safely."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reconciler.engine.state import DEFAULT_STATE_PATH, StateError, WriteOnlyState


def test_default_path_is_under_dot_reconciler() -> None:
    assert Path(".reconciler/state.sqlite") == DEFAULT_STATE_PATH


def test_reading_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.sqlite"
    store = WriteOnlyState(path)
    assert store.get("p", "a") is None
    assert store.get_many("p", ["a", "b"]) == {}
    assert not path.exists()


def test_record_then_get_survives_a_new_process_view(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.sqlite"
    with WriteOnlyState(path) as store:
        store.record("p1", "a1", "review_config:abc", applied_at="2025-03-01T10:00:00Z")
        store.record("p1", "a1", "review_config:def")  # overwrite: the latest apply wins
        store.record("p2", "a1", "review_config:other")
    with WriteOnlyState(path) as reopened:
        record = reopened.get("p1", "a1")
        assert record is not None
        assert record.fingerprint == "review_config:def"
        assert record.applied_at.endswith("Z")
        assert reopened.get("p2", "a1") is not None
        assert reopened.get("p1", "missing") is None


def test_get_many_reads_beyond_one_sql_batch(tmp_path: Path) -> None:
    with WriteOnlyState(tmp_path / "s.sqlite") as store:
        for i in range(1200):
            store.record("p", f"a{i}", f"fp{i}", applied_at="2025-01-01T00:00:00Z")
        found = store.get_many("p", [f"a{i}" for i in range(1300)])
    assert len(found) == 1200
    assert found["a1199"].fingerprint == "fp1199"


def test_concurrent_writers_in_one_process(tmp_path: Path) -> None:
    store = WriteOnlyState(tmp_path / "s.sqlite")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: store.record("p", f"a{i}", f"fp{i}"), range(200)))
    assert len(store.get_many("p", [f"a{i}" for i in range(200)])) == 200
    store.close()


def test_unusable_state_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "state.sqlite"
    bad.write_text("this is not a database")
    with pytest.raises(StateError, match="state file"):
        WriteOnlyState(bad).get("p", "a")


def test_store_is_plain_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with WriteOnlyState(path) as store:
        store.record("p", "a", "fp")
    rows = sqlite3.connect(path).execute("SELECT project_id, asset_id, fingerprint FROM write_only")
    assert list(rows) == [("p", "a", "fp")]
