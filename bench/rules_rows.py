"""The ownership and policy rows of ``make bench``: a plan of 10,000 assets with 5 ignore rules and
5 policy rules in reconciler.yaml, against the same plan without them, each run several times in
turn against one emulator.  The CPU per asset of the two is compared as a ratio (the goal: within
5%).  The rules do real work: the ignore rules cover every asset (a tag pattern every manifest's
``tags`` is merged for, nested fields of the blocks the manifests declare), and the policy rules
judge every asset the plan changes (1% of them)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from bench import process, workload
from bench.run import Row, _tail, format_row, load_generator, now_utc

REPEATS = 3  # runs per configuration; the row keeps the one with the least CPU
WITHOUT = "plan, no rules"
WITH = "plan, 5 ignore + 5 policy rules"
RULES = """\
ignore:
  - name: campaign-tags
    paths: ["spec.tags[campaign-*]"]
  - name: console-owns-order
    paths: [spec.asset_order]
    match: {asset_type: [VOICE_MODEL]}
  - name: pm-speed
    paths: [spec.asset_extra_meta.voice_model_meta.speed_ratio]
    match: {labels: {bench: "yes"}}
  - name: studio-devices
    paths: ["spec.asset_extra_meta.human_model_2d_meta.device_names[cam-*]"]
  - name: ops-properties
    paths: [spec.system_properties.BACKGROUND_IMG]
policies:
  - name: keep-live-avatars-active
    match: {asset_type: [HUMAN_MODEL_2D]}
    deny: "after.asset_state == 'UNACTIVED'"
    message: live avatars stay active
  - name: keep-sharing-inside-allowed-projects
    deny: >-
      has(after.shared_config) && has(after.shared_config.allowed_project_ids) &&
      !after.shared_config.allowed_project_ids.all(p, p in ['p1', 'p2'])
    message: shared only inside the organisation
  - name: no-renames-of-locked-assets
    match: {labels: {locked: "true"}}
    deny: "'asset_name' in changes"
    message: locked
  - name: keep-descriptions
    deny: "'asset_description' in changes && after.asset_description == ''"
    message: descriptions are not wiped
  - name: small-changes
    match: {labels: {bench: "yes"}}
    deny: "size(changes) > 20"
    message: one asset changes a few fields at a time
"""


def bench_rules(n: int, root: Path, *, latency_ms: int, rates: dict[str, float]) -> list[Row]:
    """Plan ``n`` assets with and without the rules, :data:`REPEATS` times each, in turn."""
    work = root / f"rules-{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    live = workload.make_updatable(load_generator()(n, seed=n, project_id=process.PROJECT_ID))
    seed = work / "seed.json"
    workload.write_seed(live, seed)
    workload.write_manifests(live, work / "manifests", drift_ratio=0.01, seed=n)
    configs = {WITHOUT: work / "none.yaml", WITH: work / "rules.yaml"}
    configs[WITHOUT].write_text("", encoding="utf-8")
    configs[WITH].write_text(RULES, encoding="utf-8")
    rate_arg = ",".join(f"{k}={v:g}" for k, v in rates.items())
    env = process.credentials_env()
    best: dict[str, Row] = {}
    with process.emulator(work, seed=seed, latency_ms=latency_ms, rate_limits=rate_arg) as emu:
        log = process.RequestLog(emu.record)
        log.read_new()
        for _ in range(REPEATS):
            for command, config in configs.items():
                argv = process.reconciler_argv(
                    emu.endpoint, "plan", "manifests", "--detailed-exitcode"
                )
                argv[3:3] = ["--config", str(config)]  # a global option, before the command
                timed = process.run_timed(argv, env=env, cwd=work)
                entries = log.read_new()
                row = Row.measured(n, command, timed, entries, rates, measured_at=now_utc())
                if timed.returncode != 2:
                    print(f"  unexpected exit {timed.returncode}:", file=sys.stderr)
                    print(_tail(timed.stderr) or _tail(timed.stdout), file=sys.stderr)
                if command not in best or row.cpu_s < best[command].cpu_s:
                    best[command] = row
    rows = [best[WITHOUT], best[WITH]]
    for row in rows:
        print(format_row(row), flush=True)
    return rows


def rules_verdict(rows: list[Row]) -> list[str]:
    """The plan's CPU per asset with the rules as a ratio of the plan without (goal: 1.05)."""
    by_command = {r.command: r for r in rows}
    plain, ruled = by_command.get(WITHOUT), by_command.get(WITH)
    if plain is None or ruled is None or not plain.cpu_ms_per_asset:
        return []
    ratio = ruled.cpu_ms_per_asset / plain.cpu_ms_per_asset
    verdict = "within" if ratio <= 1.05 else "OUTSIDE"
    return [
        f"- plan of {plain.assets:,} with 5 ignore + 5 policy rules: {ruled.cpu_ms_per_asset:.3f} "
        f"ms CPU per asset, without {plain.cpu_ms_per_asset:.3f} ms: {ratio:.3f}x ({verdict} the "
        f"5% goal; least CPU of {REPEATS} runs each)"
    ]
