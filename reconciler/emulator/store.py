"""SQLite storage of live assets: one row per asset, JSON, with the columns list filters need.

Write-only fields (review_config, shared_config) live in their own column so that no read path can
return them by accident.  One connection guarded by a lock: the server thread and a test thread
(out-of-band edits) may use the same store.
"""

from __future__ import annotations

import copy
import json
import random
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler.emulator.body import WRITE_ONLY as WRITE_ONLY_FIELDS
from reconciler.emulator.errors import EmulatorError
from reconciler.emulator.times import format_time, next_update_time, parse_time

Asset = dict[str, Any]
SORT_KEYS = {
    "create_time": "create_time",
    "update_time": "update_time",
    "asset_order": "asset_order",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    asset_id    TEXT PRIMARY KEY,
    create_time TEXT NOT NULL,
    update_time TEXT,
    asset_order INTEGER,
    asset_name  TEXT,
    asset_type  TEXT,
    asset_state TEXT,
    tags        TEXT NOT NULL,
    data        TEXT NOT NULL,
    write_only  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_order ON assets (create_time, asset_id);
CREATE INDEX IF NOT EXISTS assets_updated ON assets (update_time, create_time, asset_id);
"""


@dataclass
class AssetQuery:
    """The list filters the emulator understands (see docs/emulator.md)."""

    asset_ids: list[str] = field(default_factory=list)
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    tag_intersection: bool = False
    asset_types: list[str] = field(default_factory=list)
    asset_states: list[str] = field(default_factory=list)
    sort_key: str = "create_time"
    descending: bool = False
    limit: int = 10
    offset: int = 0


def _tag_match(tags_json: str, terms_json: str, intersection: int) -> int:
    tags = json.loads(tags_json)
    terms = json.loads(terms_json)
    hits = (any(term.lower() in str(tag).lower() for tag in tags) for term in terms)
    return int(all(hits) if intersection else any(hits))


def sort_time(value: object) -> object:
    """``value`` as the sort column holds it: an instant in one text form (UTC, milliseconds),
    so that ``2024-03-02T09:30:00Z`` sorts before ``2024-03-02T09:30:00.500Z`` as it is."""
    moment = parse_time(value) if isinstance(value, str) else None
    return value if moment is None else format_time(moment)


def _row(asset: Asset, write_only: Asset) -> tuple[Any, ...]:
    return (
        asset["asset_id"],
        asset.get("create_time") or "",
        sort_time(asset.get("update_time")),
        asset.get("asset_order"),
        asset.get("asset_name"),
        asset.get("asset_type"),
        asset.get("asset_state"),
        json.dumps(asset.get("tags") or [], ensure_ascii=False),
        json.dumps(asset, ensure_ascii=False, separators=(",", ":")),
        json.dumps(write_only, ensure_ascii=False, separators=(",", ":")),
    )


def _set_path(asset: Asset, parts: list[str], value: Any) -> None:
    node = asset
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def omit_paths(asset: Asset, paths: Iterable[str]) -> Asset:
    """A copy of ``asset`` without the dotted ``paths`` (what a summary list row leaves out)."""
    out = copy.deepcopy(asset)
    for dotted in paths:
        parts = dotted.split(".")
        node: Any = out
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return out


def split_write_only(asset: Asset) -> tuple[Asset, Asset]:
    """(readable fields, write-only fields) of an asset record."""
    readable = {k: v for k, v in asset.items() if k not in WRITE_ONLY_FIELDS}
    hidden = {k: v for k, v in asset.items() if k in WRITE_ONLY_FIELDS}
    return readable, hidden


def normalize_seed_asset(raw: object, project_id: str, now: str, where: str) -> Asset:
    """A seed record made complete enough to serve; raises EmulatorError naming ``where``."""
    if not isinstance(raw, dict):
        raise EmulatorError(
            f"{where}: each seed record must be a mapping, got {type(raw).__name__}"
        )
    asset_id = raw.get("asset_id")
    if not isinstance(asset_id, str) or not asset_id:
        raise EmulatorError(f"{where}: seed record has no asset_id string")
    asset: Asset = dict(raw)
    asset.setdefault("project_id", project_id)
    asset.setdefault("create_time", now)
    asset.setdefault("update_time", asset["create_time"])
    asset.setdefault("asset_state", "ACTIVED")
    tags = asset.get("tags")
    if tags is not None and not isinstance(tags, list):
        raise EmulatorError(f"{where}: asset {asset_id}: tags must be a list")
    return asset


class AssetStore:
    """Live assets of one emulated project, in SQLite (a file, or memory when ``path`` is None)."""

    def __init__(self, path: str | Path | None = None) -> None:
        target = str(path) if path is not None else ":memory:"
        try:
            self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise EmulatorError(f"cannot open emulator database {target}: {exc}") from None
        self._db.create_function("tag_match", 3, _tag_match, deterministic=True)
        self._lock = threading.RLock()
        self.path = None if path is None else Path(path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- writing -------------------------------------------------------------------------------

    def seed(self, assets: Iterable[object], project_id: str, source: str = "seed") -> int:
        """Insert or replace records shaped like the show API's answer; returns how many."""
        now = format_time(datetime.now(UTC))
        rows = []
        for index, raw in enumerate(assets):
            asset = normalize_seed_asset(raw, project_id, now, f"{source}[{index}]")
            rows.append(_row(*split_write_only(asset)))
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO assets VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        return len(rows)

    def update(
        self, asset_id: str, change: Callable[[Asset, Asset], tuple[Asset, Asset] | None]
    ) -> tuple[Asset, Asset] | None:
        """Run ``change(asset, write_only)`` in one transaction and store what it returns.

        Returns None for an unknown asset.  ``change`` may raise (nothing is written) or return
        None (nothing changed); the stored pair is returned either way.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT data, write_only FROM assets WHERE asset_id = ?", (asset_id,)
            ).fetchone()
            if row is None:
                return None
            current = (json.loads(row[0]), json.loads(row[1]))
            result = change(*current)
            if result is None:
                return current
            db.execute("DELETE FROM assets WHERE asset_id = ?", (asset_id,))
            db.execute("INSERT INTO assets VALUES (?,?,?,?,?,?,?,?,?,?)", _row(*result))
            return result

    def patch(self, asset_id: str, changes: Asset) -> Asset:
        """Out-of-band edit (someone used the console): set fields, bump update_time.

        A key is a top-level field or a dotted path into nested objects
        (``asset_extra_meta.human_model_2d_meta.model_version``); a dotted path whose value is
        None removes that key.
        """

        def apply(asset: Asset, hidden: Asset) -> tuple[Asset, Asset]:
            flat = {k: v for k, v in changes.items() if "." not in k}
            readable, write_only = split_write_only(flat)
            asset = {**copy.deepcopy(asset), **readable}
            for dotted, value in changes.items():
                if "." in dotted:
                    _set_path(asset, dotted.split("."), value)
            asset["update_time"] = next_update_time(asset.get("update_time"))
            return asset, {**hidden, **write_only}

        result = self.update(asset_id, apply)
        if result is None:
            raise KeyError(asset_id)
        return result[0]

    def delete(self, asset_id: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM assets WHERE asset_id = ?", (asset_id,)).rowcount > 0

    # --- reading -------------------------------------------------------------------------------

    def get(self, asset_id: str) -> Asset | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM assets WHERE asset_id = ?", (asset_id,)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def get_write_only(self, asset_id: str) -> Asset:
        """What was last written to review_config/shared_config (tests only; the API never says)."""
        with self._lock:
            row = self._db.execute(
                "SELECT write_only FROM assets WHERE asset_id = ?", (asset_id,)
            ).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM assets").fetchone()[0])

    def all(self) -> list[Asset]:
        with self._lock:
            rows = self._db.execute("SELECT data FROM assets ORDER BY create_time, asset_id")
            return [json.loads(row[0]) for row in rows.fetchall()]

    def query(self, q: AssetQuery) -> tuple[int, list[Asset]]:
        """(number of matching assets, the page of them) in a stable order."""
        where: list[str] = []
        params: list[Any] = []
        if q.asset_ids:
            where.append(f"asset_id IN ({','.join('?' * len(q.asset_ids))})")
            params.extend(q.asset_ids)
        if q.name:
            where.append("instr(lower(coalesce(asset_name, '')), lower(?)) > 0")
            params.append(q.name)
        if q.tags:
            where.append("tag_match(tags, ?, ?)")
            params.extend([json.dumps(q.tags), int(q.tag_intersection)])
        for column, values in (("asset_type", q.asset_types), ("asset_state", q.asset_states)):
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        direction = "DESC" if q.descending else "ASC"
        key = SORT_KEYS.get(q.sort_key, "create_time")
        # Each column once: a repeated one (create_time, the default key) kept SQLite from
        # walking the index in order, so a page at offset 99,900 sorted the project (75 ms).
        columns = [key, *(c for c in ("create_time", "asset_id") if c != key)]
        order = ", ".join(f"{column} {direction}" for column in columns)
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM assets {clause}", params).fetchone()[0]
            rows = self._db.execute(
                f"SELECT data FROM assets {clause} ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, q.limit, q.offset],
            ).fetchall()
        return int(total), [json.loads(row[0]) for row in rows]


# --- seed files and generated assets ----------------------------------------------------------


def load_seed_file(path: str | Path) -> list[Asset]:
    """Records from a JSON or YAML file: a list, or a list-API answer ``{"assets": [...]}``."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise EmulatorError(f"cannot read seed file {source}: {exc.strerror}") from None
    try:
        if source.suffix.lower() == ".json":
            data: object = json.loads(text)
        else:
            from ruamel.yaml import YAML
            from ruamel.yaml.error import YAMLError

            try:
                data = YAML(typ="safe").load(text)
            except YAMLError as exc:
                raise EmulatorError(f"seed file {source} is not valid YAML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise EmulatorError(
            f"seed file {source} is not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("assets"), list):
        data = data["assets"]
    if not isinstance(data, list):
        raise EmulatorError(f"seed file {source} must hold a list of DigitalAssetInfo records")
    for index, item in enumerate(data):
        normalize_seed_asset(item, "", "", f"{source}[{index}]")  # fail early, naming the record
    return data


_TYPES = (
    "HUMAN_MODEL_2D",
    "VOICE_MODEL",
    "IMAGE",
    "VIDEO",
    "PPT",
    "MATERIAL",
    "AUDIO",
    "MUSIC",
    "COMMON_FILE",
    "BUSINESS_CARD_TEMPLET",
)
_TAGS = ("NEWS", "BUSINESS", "E-COMMERCE", "MARKETING", "EDUCATION", "MALE", "FEMALE", "ASIAN")
_WORDS = ("Aurora", "Nova", "Atlas", "Echo", "Lumen", "Orion", "Vega", "Sol", "Iris", "Juno")


def _extra_meta(kind: str, rng: random.Random) -> Asset | None:
    if kind == "HUMAN_MODEL_2D":
        return {
            "human_model_2d_meta": {
                "is_action_editable": rng.random() < 0.5,
                "is_live_copy": False,
                "is_real_background": rng.random() < 0.3,
                "support_live": rng.random() < 0.7,
                "model_version": rng.choice(["V2", "V3", "V3_2", "V3_3"]),
                "model_resolution": rng.choice(["1080P", "4K"]),
                "device_names": [],
                "is_with_action_library": rng.random() < 0.5,
                "is_flexus": False,
            }
        }
    if kind == "VOICE_MODEL":
        return {
            "voice_model_meta": {
                "order": rng.randint(0, 100),
                "model_type": rng.choice(["COMMON", "CLONE"]),
                "sex": rng.choice(["MALE", "FEMALE"]),
                "language": "CN",
                "languages": rng.sample(["CN", "EN", "JPN"], k=rng.randint(1, 3)),
                "speed_ratio": 1.0,
                "volume_ratio": 1.0,
                "is_realtime_voice": rng.random() < 0.5,
                "voice_capability": {"is_support_phoneme": True, "is_support_speed": True},
            }
        }
    if kind == "IMAGE":
        return {"image_meta": {"codec": "png", "width": 1920, "height": 1080, "mode": "Horizontal"}}
    if kind == "VIDEO":
        return {
            "video_meta": {
                "video_codec": "H264",
                "width": 1920,
                "height": 1080,
                "frame_rate": "25",
                "duration": rng.randint(5, 600),
                "video_transcoding_status": "SUCCEEDED",
            }
        }
    if kind == "PPT":
        pages = rng.randint(1, 30)
        return {
            "ppt_meta": {
                "auto_analysis": True,
                "ppt_analysis_status": "SUCCEEDED",
                "page_count": pages,
            }
        }
    if kind in ("AUDIO", "MUSIC"):
        return {
            "audio_meta": {"duration": rng.randint(5, 300), "audio_codec": "mp3", "sample": 44100}
        }
    if kind == "MATERIAL":
        return {
            "material_meta": {
                "components": [{"component_name": "coat", "component_type": "CLOTHES"}]
            }
        }
    return None


def generate_assets(n: int, seed: int = 0, project_id: str = "p-emulator") -> list[Asset]:
    """``n`` realistic assets of every type, the same for the same ``seed`` (benchmarks, tests)."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assets: list[Asset] = []
    for index in range(n):
        kind = _TYPES[index % len(_TYPES)]
        created = start + timedelta(seconds=index * 37 + rng.randint(0, 30))
        asset: Asset = {
            "project_id": project_id,
            "asset_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "asset_name": f"{rng.choice(_WORDS)} {kind.replace('_', ' ').title()} {index:05d}",
            "asset_description": f"Generated {kind.lower()} asset number {index}",
            "create_time": format_time(created),
            "update_time": format_time(created + timedelta(hours=rng.randint(0, 1000))),
            "asset_type": kind,
            "asset_state": "ACTIVED" if rng.random() < 0.8 else "UNACTIVED",
            "tags": rng.sample(_TAGS, k=rng.randint(0, 3)),
            "system_properties": [],
            "asset_order": rng.randint(0, 100),
            "files": [],
        }
        extra = _extra_meta(kind, rng)
        if extra is not None:
            asset["asset_extra_meta"] = extra
        if kind == "HUMAN_MODEL_2D":
            asset["supported_service"] = ["VIDEO_2D"]
            asset["system_properties"] = [{"key": "BACKGROUND_SCENE", "value": "Horizontal"}]
        assets.append(asset)
    return assets
