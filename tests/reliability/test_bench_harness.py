"""The benchmark's own arithmetic and bookkeeping: a wrong floor or count would mislead readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench import process, workload
from bench import run as bench_run
from bench.baseline import differs
from bench.run import (
    BEGIN,
    END,
    Baseline,
    PlanStartup,
    Results,
    Row,
    floor_seconds,
    merge_previous,
    plan_changed,
    results_json,
    target_table,
    verdicts,
    write_results,
)

pytestmark = pytest.mark.reliability


def test_request_kinds_from_method_and_path() -> None:
    assert process.request_kind({"method": "GET", "path": "/v1/p/digital-assets"}) == "list"
    assert process.request_kind({"method": "GET", "path": "/v1/p/digital-assets/a1"}) == "show"
    assert process.request_kind({"method": "PUT", "path": "/v1/p/digital-assets/a1"}) == "update"
    assert process.request_kind({"method": "POST", "path": "/v1/p/digital-assets/x/restore"}) == (
        "other"
    )


def test_request_log_is_read_incrementally_and_skips_a_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    first = {"method": "GET", "path": "/v1/p/digital-assets", "status": 200}
    throttled = {"method": "PUT", "path": "/v1/p/digital-assets/a", "status": 429}
    path.write_text(json.dumps(first) + "\n" + json.dumps(throttled)[:10])
    log = process.RequestLog(path)
    assert log.read_new() == [first]
    with path.open("w") as fh:  # the writer finishes the line
        fh.write(json.dumps(first) + "\n" + json.dumps(throttled) + "\n")
    new = log.read_new()
    assert new == [throttled]
    assert process.count_kinds(log.entries) == {"list": 1, "update": 1, "throttled": 1}


def test_floor_sums_requests_over_each_apis_rate() -> None:
    counts = {"list": 100, "update": 100, "throttled": 3}
    assert floor_seconds(counts, {"list": 20, "show": 20, "update": 10}) == pytest.approx(15.0)


def _baseline(wall_s: float, tool_wall_s: float) -> Baseline:
    return Baseline(1000, wall_s, 1.0, 40, {"show": 1000}, 0, 109, tool_wall_s, 10)


def test_verdicts_judge_each_target_on_its_own_row() -> None:
    small = Row(1000, "plan", {"list": 10}, 0.9, 0.5, 0.2, 90, 2)
    big = Row(10000, "plan", {"list": 100}, 7.0, 5.0, 6.0, 350, 2)
    text = "\n".join(verdicts(Results([small, big], _baseline(40.0, 1.0))))
    assert "plan 10,000: wall / floor <= 0.9: 1.40 (NOT met)" in text
    assert "plan 10,000: CPU per asset <= 0.3 ms: 0.600 ms (NOT met)" in text
    assert "plan 10,000: peak RSS <= 200 MB: 350 MB (NOT met)" in text
    assert "same run >= 50x: 40.0x (NOT met)" in text
    assert "100,000" not in text  # not measured: no verdict line
    table = "\n".join(target_table(Results([big], _baseline(60.0, 1.0), PlanStartup([0.3], [0.5]))))
    assert "| plan 100,000: peak RSS | 1,309 MB | <= 600 MB | - | not measured |" in table
    assert "| 60.0x | met |" in table
    assert "| <= 0.35 s | 0.30 s | met |" in table


def test_plan_changes_are_read_from_the_summary_line() -> None:
    assert plan_changed("...\nPlan: 12 to change, 988 unchanged.\n") == 12
    assert plan_changed("No changes. Live assets match the manifests.\n") == 0
    assert plan_changed("Error: something\n") is None


def test_the_sdk_scripts_comparison() -> None:
    live = {
        "asset_name": "A",
        "tags": ["x", "y"],
        "asset_extra_meta": {"voice_model_meta": {"sex": "MALE", "language": "CN"}},
        "system_properties": [{"key": "K", "value": "V"}, {"key": "O", "value": "1"}],
    }
    assert not differs({"asset_name": "A", "system_properties": {"K": "V"}}, live)
    assert not differs({"asset_extra_meta": {"voice_model_meta": {"sex": "MALE"}}}, live)
    assert differs({"asset_extra_meta": {"voice_model_meta": {"sex": "FEMALE"}}}, live)
    assert differs({"system_properties": {"K": "W"}}, live)
    assert differs({"tags": ["y", "x"]}, live)  # the script compares lists as they are


def test_a_run_of_one_size_keeps_the_other_sizes_rows(tmp_path: Path) -> None:
    previous = tmp_path / "results.json"
    old = [
        Row(1000, "plan", {"list": 10}, 0.7, 0.5, 0.6, 65, 2, measured_at="old"),
        Row(100000, "plan", {"list": 1000}, 60.0, 50.0, 30.0, 500, 2, measured_at="old"),
    ]
    startup = PlanStartup([0.31, 0.29, 0.3], [0.5, 0.5, 0.6])
    data = results_json(
        Results(old, _baseline(50.0, 0.7), startup), latency_ms=30, rates=bench_run.DEFAULT_RATES
    )
    previous.write_text(json.dumps(data))
    new = [Row(1000, "plan", {"list": 10}, 0.5, 0.5, 0.4, 60, 2, measured_at="new")]
    merged = merge_previous(Results(new), previous)
    rows, baseline = merged.rows, merged.baseline
    assert merged.startup is not None and merged.startup.median_first_request_s == 0.3
    assert [(r.assets, r.measured_at) for r in rows] == [(1000, "new"), (100000, "old")]
    assert rows[1].to_json() == old[1].to_json()  # a row survives the JSON round trip
    assert baseline is not None and baseline.ratio == pytest.approx(50 / 0.7)
    assert data["rows"][0]["requests"] == {"list": 10}
    assert data["rows"][0]["cpu_ms_per_asset"] == pytest.approx(0.6)
    assert data["baseline"]["changed"] == 109


def test_results_keep_the_handwritten_findings(tmp_path: Path) -> None:
    path = tmp_path / "results.md"
    path.write_text(f"# Results\n\nintro\n\n{BEGIN}\nold table\n{END}\n\n## Findings\nkept\n")
    write_results("new table", path)
    text = path.read_text()
    assert "new table" in text and "old table" not in text
    assert text.startswith("# Results\n\nintro") and text.endswith("## Findings\nkept\n")


def test_manifests_declare_writable_live_state_and_drift_one_percent(tmp_path: Path) -> None:
    live = [
        {
            "asset_id": f"id-{i}",
            "asset_name": f"Asset {i}",
            "asset_state": "BLOCK" if i == 0 else "ACTIVED",
            "asset_type": "VOICE_MODEL",
            "tags": ["a"],
            "update_time": "2025-01-01T00:00:00Z",
            "asset_extra_meta": {
                "voice_model_meta": {"sex": "MALE", "voice_capability": {"is_support_srt": True}}
            },
            "system_properties": [{"key": "IS_CONTROLLED", "value": "YES"}],
        }
        for i in range(200)
    ]
    live = workload.make_updatable(live)
    assert {a["asset_state"] for a in live} <= {"ACTIVED", "UNACTIVED"}
    load = workload.write_manifests(live, tmp_path, drift_ratio=0.01)
    assert len(load.drifted) == 2
    docs = [yaml.safe_load(p.read_text()) for p in sorted(tmp_path.glob("*.yaml"))]
    assert len(docs) == 200
    spec = next(d["spec"] for d in docs if d["metadata"]["asset_id"] not in load.drifted)
    assert "update_time" not in spec and "asset_type" not in spec
    assert spec["asset_extra_meta"] == {"voice_model_meta": {"sex": "MALE"}}
    assert spec["system_properties"] == {"IS_CONTROLLED": "YES"}
    edited = [d["spec"] for d in docs if d["metadata"]["asset_id"] in load.drifted]
    assert all(workload.spec_from_live(live[0]) != s for s in edited)


def test_wall_time_is_split_around_the_first_and_last_request() -> None:
    start = process.entry_time({"time": "2026-01-01T00:00:00.000Z"})
    assert start is not None
    entries = [{"time": "2026-01-01T00:00:02.500Z"}, {"time": "2026-01-01T00:00:07.500Z"}]
    assert process.phases(entries, start, wall_s=9.0) == pytest.approx((2.5, 5.0, 1.5))
    assert process.phases([], start, wall_s=3.0) == (3.0, 0.0, 0.0)


def test_a_small_benchmark_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make bench` in miniature: real emulator process, real CLI processes, counted requests,
    and the SDK script against the same emulator (at a faster show limit, to stay quick).

    Two start-up runs instead of five, and a shorter pause between runs: at this size a run
    spends a few tokens of buckets that refill at 10-20 per second, so 0.35 s finds them full
    again (any 429 would show in the counts asserted below)."""
    from bench.run import bench_size

    monkeypatch.setattr(process, "REFILL_SECONDS", 0.35)
    monkeypatch.setattr(bench_run, "STARTUP_RUNS", 2)

    rates = {"list": 20.0, "show": 300.0, "update": 10.0}
    run = bench_size(
        150, tmp_path, latency_ms=0, rates=rates, profile=False, baseline=True, startup=True
    )
    rows = run.rows
    by_command = {row.command: row for row in rows}
    assert [r.command for r in rows] == ["plan", "apply", "re-plan"]
    assert by_command["plan"].returncode == 2  # 1% drifted: changes
    assert by_command["plan"].changed == 2
    assert by_command["apply"].returncode == 0
    assert by_command["re-plan"].returncode == 0  # converged
    assert by_command["re-plan"].changed == 0
    assert by_command["plan"].counts == {"list": 2}  # 150 ids: two pages of at most 100
    # round(1.5) = 2 drifted; the two written assets are read again right before their PUTs,
    # in one shared list request.
    assert by_command["apply"].counts == {"list": 3, "update": 2}
    assert by_command["apply"].fresh_reads == 1
    assert all(row.max_rss_mb > 0 and row.cpu_s > 0 for row in rows)
    baseline = run.baseline
    assert baseline is not None and baseline.returncode == 0
    assert baseline.counts == {"show": 150}  # one ShowAsset per manifest, before apply
    assert baseline.changed is not None and baseline.changed >= 2
    assert baseline.tool_wall_s == by_command["plan"].wall_s
    assert run.startup is not None and len(run.startup.first_request_s) == bench_run.STARTUP_RUNS
    runs = zip(run.startup.first_request_s, run.startup.wall_s, strict=True)
    assert all(0 < first < wall for first, wall in runs)  # each run's request came before its end


def _entry(method: str, path: str, status: int = 200, **more: object) -> dict[str, object]:
    return {"method": method, "path": path, "status": status, **more}


def test_fresh_reads_count_every_read_of_a_written_asset_by_list_or_by_show() -> None:
    """Apply re-reads an asset before each PUT attempt, a retry too: all of them are counted."""
    entries = [
        _entry("GET", "/v1/p/digital-assets", query=[["limit", "100"], ["offset", "0"]]),
        _entry("GET", "/v1/p/digital-assets", query=[["asset_id", "a"], ["asset_id", "b"]]),
        _entry("PUT", "/v1/p/digital-assets/a"),
        _entry("PUT", "/v1/p/digital-assets/b", status=429),
        _entry("GET", "/v1/p/digital-assets", query=[["asset_id", "b"]]),  # before the retry
        _entry("PUT", "/v1/p/digital-assets/b"),
        _entry("GET", "/v1/p/digital-assets/a"),  # a read-back
        _entry("GET", "/v1/p/digital-assets/c"),  # an asset not written
    ]
    assert bench_run.fresh_reads(entries) == 3
    assert bench_run.landed_assets(entries) == {"a", "b"}
    timed = [{**e, "time": f"2026-01-01T00:00:{i:02d}.000Z"} for i, e in enumerate(entries)]
    assert bench_run.put_window(timed) == (3.0, 2)  # first PUT at 2 s, last accepted at 5 s


def test_the_real_floor_counts_only_the_requests_the_service_let_through() -> None:
    entries = [_entry("PUT", f"/v1/p/digital-assets/{i}") for i in range(10)]
    entries += [_entry("PUT", "/v1/p/digital-assets/0", status=429)] * 4
    accepted = bench_run.accepted_counts(entries)
    assert accepted == {"update": 10}
    assert floor_seconds(accepted, bench_run.HALF_RATES) == pytest.approx(2.0)  # 10 at 5/s


def test_half_quota_rows_have_their_own_table_targets_and_keep_the_other_rows(
    tmp_path: Path,
) -> None:
    plan = Row(10000, "plan", {"list": 100}, 4.3, 5.0, 2.5, 80, 2, measured_at="old")
    half_plan = Row(10000, "plan, half quota", {"list": 107, "throttled": 7}, 9.6, 10.0, 3, 82, 2)
    half_apply = Row(
        10000,
        "apply, half quota",
        {"list": 130, "update": 203, "throttled": 3},
        50.0,
        52.0,
        5.0,
        84,
        0,
        fresh_reads=30,
        landed=199,
        to_land=200,
        put_window_s=41.0,
        puts_accepted=200,
    )
    previous = tmp_path / "results.json"
    old = Results([plan])
    previous.write_text(json.dumps(results_json(old, latency_ms=30, rates=bench_run.DEFAULT_RATES)))
    merged = merge_previous(Results([half_plan, half_apply]), previous)
    assert [r.command for r in merged.rows] == ["plan", "apply, half quota", "plan, half quota"]
    text = bench_run.report(merged, latency_ms=30, rates=bench_run.DEFAULT_RATES)
    assert (
        "| 10,000 | apply | 130 | 0 | 203 | 3 | 30 | 199 of 200 | 50.00 | 52.00 | 0.96 "
        "| 41.00 (39.80) | 0 |" in text
    )
    assert "| half quota, plan: wall / real floor | 1.17 | <= 1.1 | 0.96 | met |" in text
    assert "| half quota, apply: changes landed | 98.5% | >= 100% | 99.5% | NOT met |" in text
    lines = "\n".join(verdicts(merged))
    assert "apply, half quota of 10,000: 199 of 200 changes landed, 3 429(s)" in lines
    # the main table keeps the rows measured at the configured limits only
    main_table = text.split("Half quota:")[0]
    assert "half quota" not in main_table.split("| assets |")[1]


def test_the_half_quota_rows_run_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator allows half the configured rates: the apply still lands every change, and
    the rows count what the service let through against its real limits (the first run meets
    full buckets whatever the pause; the apply meets 429s by design)."""
    monkeypatch.setattr(process, "REFILL_SECONDS", 0.4)
    rows = bench_run.bench_half_quota(200, tmp_path, latency_ms=0, changes=10)
    by_command = {row.command: row for row in rows}
    assert list(by_command) == ["plan, half quota", "apply, half quota", "re-plan, half quota"]
    applied = by_command["apply, half quota"]
    assert applied.returncode == 0 and applied.landed == applied.to_land == 10
    assert applied.fresh_reads >= 1
    assert by_command["re-plan, half quota"].changed == 0
    planned = by_command["plan, half quota"]
    assert planned.counts == {"list": 2} and planned.floor_s == pytest.approx(2 / 10)
