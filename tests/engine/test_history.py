"""Drift history in the state file: episodes open, count, and close with how they ended."""

from __future__ import annotations

from pathlib import Path

from reconciler.engine.history import DriftHistory, Observation, Resolution

P = "p-1"


def drifted(
    asset_id: str, *fields: str, digest: str = "d1", status: str = "drifted"
) -> Observation:
    return Observation(asset_id, status, True, tuple(fields), digest)


def in_sync(asset_id: str, digest: str = "d1") -> Observation:
    return Observation(asset_id, "in-sync", False, (), digest)


def test_reading_before_anything_was_recorded_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with DriftHistory(path) as history:
        assert history.open_episodes(P) == {}
        assert history.episodes(P, "a") == []
    assert not path.exists()


def test_an_episode_counts_cycles_and_collects_fields(tmp_path: Path) -> None:
    with DriftHistory(tmp_path / "s.sqlite") as history:
        first = history.record_cycle(P, [drifted("a", "asset_name")], "2026-01-01T00:00:00Z")
        assert [e.asset_id for e in first.opened] == ["a"]
        again = history.record_cycle(P, [drifted("a", "tags")], "2026-01-01T00:05:00Z")
        assert again.opened == () and again.resolved == ()
        episode = history.open_episodes(P)["a"]
    assert episode.first_seen == "2026-01-01T00:00:00Z"
    assert episode.last_seen == "2026-01-01T00:05:00Z"
    assert episode.cycles == 2
    assert episode.fields == ("asset_name", "tags")


def test_in_sync_with_the_same_manifest_is_an_out_of_band_fix(tmp_path: Path) -> None:
    with DriftHistory(tmp_path / "s.sqlite") as history:
        history.record_cycle(P, [drifted("a", "asset_name")], "2026-01-01T00:00:00Z")
        changes = history.record_cycle(P, [in_sync("a")], "2026-01-01T00:05:00Z")
        (episode,) = history.episodes(P, "a")
    assert [e.resolution for e in changes.resolved] == [Resolution.OUT_OF_BAND]
    assert episode.resolved_at == "2026-01-01T00:05:00Z"
    assert episode.resolution is Resolution.OUT_OF_BAND


def test_in_sync_after_the_manifest_changed_is_a_manifest_change(tmp_path: Path) -> None:
    with DriftHistory(tmp_path / "s.sqlite") as history:
        history.record_cycle(P, [drifted("a", "asset_name", digest="old")], "t1")
        history.record_cycle(P, [in_sync("a", digest="new")], "t2")
        (episode,) = history.episodes(P, "a")
    assert episode.resolution is Resolution.MANIFEST_CHANGE


def test_an_asset_no_manifest_declares_any_more_is_a_manifest_change(tmp_path: Path) -> None:
    with DriftHistory(tmp_path / "s.sqlite") as history:
        history.record_cycle(P, [drifted("a", "tags"), drifted("b", "tags")], "t1")
        changes = history.record_cycle(P, [drifted("b", "tags")], "t2")
        assert [e.asset_id for e in changes.resolved] == ["a"]
        assert history.episodes(P, "a")[0].resolution is Resolution.MANIFEST_CHANGE
        assert set(history.open_episodes(P)) == {"b"}


def test_self_heal_closes_the_episode_and_a_new_drift_opens_another(tmp_path: Path) -> None:
    with DriftHistory(tmp_path / "s.sqlite") as history:
        history.record_cycle(P, [drifted("a", "tags")], "t1")
        closed = history.resolve(P, "a", Resolution.SELF_HEAL, "t2")
        assert closed is not None and closed.resolution is Resolution.SELF_HEAL
        assert history.resolve(P, "a", Resolution.SELF_HEAL, "t3") is None
        history.record_cycle(P, [drifted("a", "asset_name")], "t4")
        episodes = history.episodes(P, "a")
    assert [(e.first_seen, e.resolution) for e in episodes] == [
        ("t1", Resolution.SELF_HEAL),
        ("t4", None),
    ]


def test_an_asset_that_could_not_be_compared_keeps_its_episode_open(tmp_path: Path) -> None:
    with DriftHistory(tmp_path / "s.sqlite") as history:
        history.record_cycle(P, [drifted("a", "tags")], "t1")
        history.record_cycle(
            P, [Observation("a", "error", False), Observation("b", "error", False)], "t2"
        )
        assert history.open_episodes(P)["a"].cycles == 1
        assert "b" not in history.open_episodes(P)


def test_missing_and_blocked_assets_are_episodes_too(tmp_path: Path) -> None:
    with DriftHistory(tmp_path / "s.sqlite") as history:
        history.record_cycle(P, [drifted("a", status="missing")], "t1")
        history.record_cycle(P, [drifted("a", "tags", status="drifted")], "t2")
        episode = history.open_episodes(P)["a"]
    assert (episode.status, episode.cycles, episode.first_seen) == ("drifted", 2, "t1")


def test_history_survives_reopening_and_projects_are_apart(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with DriftHistory(path) as history:
        history.record_cycle(P, [drifted("a", "tags")], "t1")
        history.record_cycle("p-2", [drifted("a", "asset_name")], "t1")
    with DriftHistory(path) as history:
        history.record_cycle(P, [drifted("a", "tags")], "t2")
        assert history.open_episodes(P)["a"].cycles == 2
        assert history.open_episodes("p-2")["a"].fields == ("asset_name",)
