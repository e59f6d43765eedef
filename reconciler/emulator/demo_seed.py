"""Live state of the demo project: what ``make demo`` starts the emulator with.

The example manifests in ``manifests/`` manage the first five assets; the last three are
unmanaged (they show up in ``drift --include-unmanaged`` and in the coverage figure).
"""

from __future__ import annotations

import copy
from typing import Any

DEMO_PROJECT_ID = "p-demo"

VOICE_ID = "0b5c1e4a-7f3d-4c2a-9e61-2a7d5b8c9f10"
AVATAR_ID = "93769b5a-c8c6-4692-9c95-53933a1f0c93"
IMAGE_ID = "5e2f8a61-3b4c-4d7e-8f90-1a2b3c4d5e6f"
VIDEO_ID = "7c9d0e1f-2a3b-4c5d-8e6f-708192a3b4c5"
PPT_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
MANAGED_IDS = (VOICE_ID, AVATAR_ID, IMAGE_ID, VIDEO_ID, PPT_ID)

_DEMO: list[dict[str, Any]] = [
    {
        "asset_id": VOICE_ID,
        "asset_name": "Lin Warm Narrator",
        "asset_description": "Warm female narration voice for product videos",
        "asset_type": "VOICE_MODEL",
        "asset_state": "ACTIVED",
        "create_time": "2024-03-01T08:00:00Z",
        "update_time": "2024-03-02T09:30:00Z",
        "tags": ["FEMALE", "NEWS"],
        "asset_order": 10,
        "asset_extra_meta": {
            "voice_model_meta": {
                "order": 1,
                "model_type": "COMMON",
                "sex": "FEMALE",
                "language": "CN",
                "languages": ["CN", "EN"],
                "speed_ratio": 1.0,
                "volume_ratio": 1.0,
                "is_realtime_voice": False,
                "voice_capability": {
                    "is_support_phoneme": True,
                    "is_support_break_time": True,
                    "is_support_speed": True,
                    "conversion_rate": 4.2,
                },
            }
        },
        "system_properties": [],
        "files": [],
    },
    {
        "asset_id": AVATAR_ID,
        "asset_name": "Sara Model",
        "asset_description": "Virtual employee",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "UNACTIVED",
        "create_time": "2024-03-05T10:15:00Z",
        "update_time": "2024-03-06T11:00:00Z",
        "tags": ["NEWS", "FEMALE", "HALF-BODY"],
        "asset_order": 5,
        "supported_service": ["VIDEO_2D"],
        "asset_extra_meta": {
            "human_model_2d_meta": {
                "is_action_editable": True,
                "is_live_copy": False,
                "is_real_background": False,
                "support_live": False,
                "model_version": "V3_2",
                "model_resolution": "1080P",
                "device_names": [],
                "is_with_action_library": True,
                "is_flexus": False,
            }
        },
        "system_properties": [
            # Set by the platform; the demo manifests leave system properties alone.
            {"key": "BACKGROUND_SCENE", "value": "Vertical"},
            {"key": "MATERIAL_IMG", "value": "Yes"},
        ],
        "files": [],
    },
    {
        "asset_id": IMAGE_ID,
        "asset_name": "Studio Background",
        "asset_description": "Bright newsroom backdrop, landscape",
        "asset_type": "IMAGE",
        "asset_state": "ACTIVED",
        "create_time": "2024-03-07T12:00:00Z",
        "update_time": "2024-03-07T12:00:00Z",
        # The manifest lists the same tags in another order: tags are a set, so no change.
        "tags": ["BACKGROUND", "NEWS"],
        "asset_order": 10,
        "asset_extra_meta": {
            "image_meta": {"codec": "png", "width": 1920, "height": 1080, "mode": "Horizontal"}
        },
        "system_properties": [{"key": "BACKGROUND_IMG", "value": "Yes"}],
        "files": [],
    },
    {
        "asset_id": VIDEO_ID,
        "asset_name": "Product Intro Clip",
        "asset_description": "30-second product teaser",
        "asset_type": "VIDEO",
        "asset_state": "ACTIVED",
        "create_time": "2024-03-08T09:00:00Z",
        "update_time": "2024-03-08T09:45:00Z",
        "tags": ["MARKETING"],
        "asset_order": 0,
        "asset_extra_meta": {
            "video_meta": {
                "video_codec": "H264",
                "width": 1920,
                "height": 1080,
                "frame_rate": "25",
                "video_bit_rate": 4000,
                "duration": 30,
                "audio_codec": "AAC",
                "audio_bit_rate": 128,
                "audio_channels": 2,
                "sample": 44100,
                "mode": "Horizontal",
                "video_transcoding_status": "SUCCEEDED",
            }
        },
        "system_properties": [],
        "files": [],
    },
    {
        "asset_id": PPT_ID,
        "asset_name": "Quarterly Review Deck",
        "asset_description": "Q1 results",
        "asset_type": "PPT",
        "asset_state": "UNACTIVED",
        "create_time": "2024-03-10T14:00:00Z",
        "update_time": "2024-03-10T14:20:00Z",
        "tags": ["BUSINESS", "EDUCATION"],
        "asset_extra_meta": {
            "ppt_meta": {
                "auto_analysis": True,
                "ppt_analysis_status": "SUCCEEDED",
                "page_count": 2,
                "pages": [
                    {"page_no": 1, "file_id": "f-ppt-001", "page_content": "Welcome"},
                    {"page_no": 2, "file_id": "f-ppt-002", "page_content": "Results"},
                ],
            }
        },
        "system_properties": [],
        "files": [],
    },
    {
        "asset_id": "c0ffee00-1111-4222-8333-444455556666",
        "asset_name": "Old Jingle",
        "asset_description": "Unmanaged background music",
        "asset_type": "MUSIC",
        "asset_state": "ACTIVED",
        "create_time": "2024-02-01T08:00:00Z",
        "update_time": "2024-02-01T08:00:00Z",
        "tags": [],
        "asset_extra_meta": {"audio_meta": {"duration": 95, "audio_codec": "mp3", "sample": 44100}},
        "files": [],
    },
    {
        "asset_id": "d1ce0000-2222-4333-8444-555566667777",
        "asset_name": "Spare Avatar",
        "asset_description": "Unmanaged test avatar",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "UNACTIVED",
        "create_time": "2024-02-02T08:00:00Z",
        "update_time": "2024-02-02T08:00:00Z",
        "tags": ["MALE"],
        "asset_extra_meta": {
            "human_model_2d_meta": {"model_version": "V2", "model_resolution": "1080P"}
        },
        "files": [],
    },
    {
        "asset_id": "e2e00000-3333-4444-8555-666677778888",
        "asset_name": "Blocked Upload",
        "asset_description": "Unmanaged asset frozen by review",
        "asset_type": "IMAGE",
        "asset_state": "BLOCK",
        "block_reason_code": "CONTENT_REVIEW",
        "reason": "Blocked by content review",
        "create_time": "2024-02-03T08:00:00Z",
        "update_time": "2024-02-03T08:00:00Z",
        "tags": [],
        "files": [],
    },
]


def demo_assets(project_id: str = DEMO_PROJECT_ID) -> list[dict[str, Any]]:
    """A fresh copy of the demo live state (callers may mutate it)."""
    assets = copy.deepcopy(_DEMO)
    for asset in assets:
        asset["project_id"] = project_id
    return assets
