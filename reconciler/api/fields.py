"""Which fields of a digital asset the service owns, and which it never returns.

Facts of the API reference (``/work/shared/api/seed-update-asset.txt``), kept beside the request
models: the manifest schema refuses the read-only paths with these reasons, the engine never
sends them, and write-only fields are sent but never read back.
"""

from __future__ import annotations

# The blocks of ``asset_extra_meta``, in the order of the request model (a test checks that they
# are its fields): plain data, so that the engine needs no model to know them.
EXTRA_META_BLOCKS: tuple[str, ...] = (
    "voice_model_meta",
    "ppt_meta",
    "material_meta",
    "human_model_2d_meta",
    "image_meta",
    "video_meta",
    "audio_meta",
)

# Paths under ``spec`` that the service fills itself, and why a manifest may not set them.
READ_ONLY_FIELDS: dict[tuple[str, ...], str] = {
    ("asset_extra_meta", "image_meta"): (
        "image_meta is read-only: the service extracts it automatically from the image file; "
        "remove it from the manifest"
    ),
    ("asset_extra_meta", "video_meta"): (
        "video_meta is read-only: the service extracts it automatically from the video file; "
        "remove it from the manifest"
    ),
    ("asset_extra_meta", "audio_meta"): (
        "audio_meta is read-only: the service extracts it automatically from the audio file; "
        "remove it from the manifest"
    ),
    ("asset_extra_meta", "voice_model_meta", "voice_capability"): (
        "voice_capability is read-only: the API reference says the capability set can be "
        "queried but not configured; remove it from the manifest"
    ),
    ("asset_extra_meta", "ppt_meta", "ppt_analysis_status"): (
        "ppt_analysis_status is read-only: the service sets it while it parses the PPT file; "
        "remove it from the manifest"
    ),
    ("asset_extra_meta", "ppt_meta", "error_info"): (
        "error_info is read-only: the service fills it when parsing the PPT file fails; "
        "remove it from the manifest"
    ),
}


# Accepted by Update Asset, never returned by Show or List.
WRITE_ONLY_FIELDS = frozenset({"review_config", "shared_config"})
