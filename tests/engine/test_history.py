"""The decisions of one drift-history cycle, without any store: what opens, goes on, and closes."""

from __future__ import annotations

from reconciler.engine.history import Episode, Observation, Resolution, decide_cycle

P = "p-1"


def drifted(asset_id: str, *fields: str, digest: str | None = "d1") -> Observation:
    return Observation(asset_id, "drifted", True, tuple(fields), digest)


def in_sync(asset_id: str, digest: str | None = "d1") -> Observation:
    return Observation(asset_id, "in-sync", False, (), digest)


def open_episode(asset_id: str, *fields: str, digest: str | None = "d1") -> Episode:
    return Episode(P, asset_id, "drifted", "t1", "t1", 1, tuple(fields), digest)


def test_a_first_drift_opens_an_episode_with_its_fields_sorted_once() -> None:
    changes = decide_cycle(P, {}, [drifted("a", "tags", "asset_name", "tags")], "t1")
    assert changes.opened == (
        Episode(P, "a", "drifted", "t1", "t1", 1, ("asset_name", "tags"), "d1"),
    )
    assert changes.continued == () and changes.resolved == ()


def test_a_drift_seen_again_goes_on_with_this_cycles_status_fields_and_digest() -> None:
    current = {"a": open_episode("a", "tags")}
    missing = Observation("a", "missing", True, ("asset_name",), "d2")
    changes = decide_cycle(P, current, [missing], "t2")
    assert changes.continued == (
        Episode(P, "a", "missing", "t1", "t2", 2, ("asset_name", "tags"), "d2"),
    )
    assert changes.opened == () and changes.resolved == ()


def test_in_sync_closes_as_out_of_band_unless_the_manifest_changed() -> None:
    current = {
        "same": open_episode("same"),
        "changed": open_episode("changed", digest="old"),
        "unknown-before": open_episode("unknown-before", digest=None),
        "unknown-now": open_episode("unknown-now"),
    }
    seen = [
        in_sync("same"),
        in_sync("changed", digest="new"),
        in_sync("unknown-before", digest="new"),
        in_sync("unknown-now", digest=None),
    ]
    changes = decide_cycle(P, current, seen, "t2")
    assert [(e.asset_id, e.resolution, e.resolved_at) for e in changes.resolved] == [
        ("same", Resolution.OUT_OF_BAND, "t2"),
        ("changed", Resolution.MANIFEST_CHANGE, "t2"),
        ("unknown-before", Resolution.OUT_OF_BAND, "t2"),
        ("unknown-now", Resolution.OUT_OF_BAND, "t2"),
    ]
    assert changes.resolved[0] == current["same"].closed(Resolution.OUT_OF_BAND, "t2")


def test_assets_no_longer_managed_close_as_manifest_changes_after_the_rest() -> None:
    current = {"gone": open_episode("gone"), "back": open_episode("back")}
    changes = decide_cycle(P, current, [in_sync("back")], "t2")
    assert [(e.asset_id, e.resolution, e.resolved_at) for e in changes.resolved] == [
        ("back", Resolution.OUT_OF_BAND, "t2"),
        ("gone", Resolution.MANIFEST_CHANGE, "t2"),
    ]


def test_an_asset_that_could_not_be_compared_changes_nothing() -> None:
    current = {"a": open_episode("a", "tags")}
    errors = [Observation("a", "error", False), Observation("b", "error", False)]
    assert decide_cycle(P, current, errors, "t2") == decide_cycle(P, {}, [], "t2")
    assert decide_cycle(P, {}, [in_sync("c")], "t2").resolved == ()
