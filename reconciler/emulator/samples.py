"""Live assets in the shape the service returns them, for tests and benchmarks.

One factory instead of a copy per test module: :func:`human_model` is a fully populated
``HUMAN_MODEL_2D`` asset (nested extra meta, system properties, files, read-only times), and
:func:`image` a minimal ``IMAGE`` asset.  Keyword arguments replace top-level fields.
"""

from __future__ import annotations

import copy
from typing import Any

_HUMAN_MODEL: dict[str, Any] = {
    "project_id": "p1",
    "asset_name": "Sara Model",
    "asset_description": "Virtual employee",
    "asset_type": "HUMAN_MODEL_2D",
    "asset_state": "ACTIVED",
    "create_time": "2021-10-30T12:30:35Z",
    "update_time": "2024-01-01T00:00:00Z",
    "tags": ["NEWS", "FEMALE"],
    "asset_order": 3,
    "asset_extra_meta": {
        "human_model_2d_meta": {
            "support_live": False,
            "model_resolution": "1080P",
            "model_version": "V3",
            "device_names": ["d1", "d2"],
        }
    },
    "system_properties": [
        {"key": "BACKGROUND_IMG", "value": "Yes"},
        {"key": "CREATED_BY_PLATFORM", "value": "Yes"},
    ],
    "files": [{"file_id": "f1", "download_url": "https://x/1?Signature=a"}],
}


def asset_id(i: int) -> str:
    """A well-formed asset id numbered ``i``: ``00000000-0000-4000-8000-00000000000i``."""
    return f"00000000-0000-4000-8000-{i:012d}"


def human_model(asset_id: str, **fields: Any) -> dict[str, Any]:
    """A fully populated 2D human model asset; ``fields`` replace top-level values."""
    asset = copy.deepcopy(_HUMAN_MODEL)
    asset["asset_id"] = asset_id
    asset.update(fields)
    return asset


def image(i: int, **fields: Any) -> dict[str, Any]:
    """A minimal active image asset numbered ``i`` (id from :func:`asset_id`)."""
    asset: dict[str, Any] = {
        "asset_id": asset_id(i),
        "asset_name": f"Image {i}",
        "asset_type": "IMAGE",
        "asset_state": "ACTIVED",
    }
    asset.update(fields)
    return asset
