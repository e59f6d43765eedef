"""A benchmark workload: live assets for the emulator's seed and manifests that mostly match them.

Manifests are derived from the live records the way ``reconciler import`` would write them
(writable fields only, the asset's own extra-meta block, ``system_properties`` as a map), so a plan
over them is "no changes" except for the assets deliberately drifted.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Writable sub-fields of each extra-meta block (the rest is read-only or system-set).
_READ_ONLY_META = {
    "voice_model_meta": {"voice_capability"},
    "ppt_meta": {"ppt_analysis_status", "error_info"},
}
_MANAGED_EXTRA_META = ("voice_model_meta", "ppt_meta", "material_meta", "human_model_2d_meta")
_SETTABLE_STATES = ("ACTIVED", "UNACTIVED")
_TOP_LEVEL = (
    "asset_name",
    "asset_description",
    "asset_state",
    "tags",
    "asset_order",
    "supported_service",
)


@dataclass(frozen=True)
class Workload:
    """What a benchmark run seeds and plans: live records, manifest files, drifted ids."""

    live: list[dict[str, Any]]
    manifest_dir: Path
    drifted: frozenset[str]


def make_updatable(assets: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Live assets all in a state a tenant may update, so every one of them can be managed."""
    out = []
    for i, asset in enumerate(assets):
        record = dict(asset)
        if record.get("asset_state") not in _SETTABLE_STATES:
            record["asset_state"] = _SETTABLE_STATES[i % 2]
        out.append(record)
    return out


def spec_from_live(live: dict[str, Any]) -> dict[str, Any]:
    """The manifest spec that declares exactly the live asset's writable state."""
    spec: dict[str, Any] = {}
    for key in _TOP_LEVEL:
        value = live.get(key)
        if value is not None and value != "" and value != []:
            spec[key] = value
    extra = live.get("asset_extra_meta") or {}
    for block in _MANAGED_EXTRA_META:
        meta = extra.get(block)
        if not meta:
            continue
        writable = {
            k: v
            for k, v in meta.items()
            if k not in _READ_ONLY_META.get(block, ()) and v is not None
        }
        if writable:
            spec["asset_extra_meta"] = {block: writable}
    props = {
        p["key"]: p["value"]
        for p in live.get("system_properties") or ()
        if p.get("key") and p.get("value")
    }
    if props:
        spec["system_properties"] = props
    return spec


def manifest(
    live: dict[str, Any], spec: dict[str, Any], target: str | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"asset_id": live["asset_id"], "labels": {"bench": "yes"}}
    if target is not None:
        metadata["target"] = target
    return {
        "apiVersion": "reconciler.metastudio/v1",
        "kind": "DigitalAsset",
        "metadata": metadata,
        "spec": spec,
    }


def drift(spec: dict[str, Any], index: int) -> dict[str, Any]:
    """A manifest edit that the plan must turn into one PUT: a new description or tag."""
    drifted = dict(spec)
    if index % 2 == 0:
        drifted["asset_description"] = f"Benchmark edit {index}"
    else:
        drifted["tags"] = [*spec.get("tags", []), f"bench-{index}"][-50:]
    return drifted


def write_manifests(
    live: list[dict[str, Any]],
    out_dir: Path,
    *,
    drift_ratio: float = 0.01,
    seed: int = 0,
    target: str | None = None,
) -> Workload:
    """One manifest file per asset (what ``import`` produces); ``drift_ratio`` of them edited;
    ``target`` is written as each manifest's ``metadata.target``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    n_drift = max(1, round(len(live) * drift_ratio)) if live else 0
    drifted = frozenset(a["asset_id"] for a in rng.sample(live, n_drift))
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for i, asset in enumerate(live):
        spec = spec_from_live(asset)
        if asset["asset_id"] in drifted:
            spec = drift(spec, i)
        text = yaml.dump(
            manifest(asset, spec, target),
            Dumper=dumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
        )
        (out_dir / f"asset-{i:05d}.yaml").write_text(text, encoding="utf-8")
    return Workload(live=live, manifest_dir=out_dir, drifted=drifted)


def write_seed(live: list[dict[str, Any]], path: Path) -> None:
    path.write_text(json.dumps(live), encoding="utf-8")
