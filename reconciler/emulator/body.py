"""What an Update Asset body may hold, transcribed from the API reference, and its check.

The emulator judges a PUT by the reference's own tables (``Updating an Asset``, request
parameters, one table per object), written out here field by field: type, whether it is
mandatory, lengths, ranges and counts.  The enumerations the reference page leaves empty come
from the SDK's docstrings (the same source as the service's console).  Nothing here is taken from
the client's request models, so a mistake in those models shows up as a refused request in an
end-to-end test instead of being mirrored.  ``tests/emulator/test_body.py`` compares this table
with the reference text.

Like the service's gateway, unknown fields and wrongly typed values are refused, ``null`` means
"not sent", and ``asset_extra_meta`` blocks that do not match ``asset_type`` are left to the
update itself (they are ignored there, as the reference says).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Scalar kinds of the reference: String, Integer, Long, Float, Boolean.
STRING, INTEGER, LONG, FLOAT, BOOLEAN = "String", "Integer", "Long", "Float", "Boolean"
INT64_MAX = 9223372036854775807


@dataclass(frozen=True)
class Param:
    """One row of a reference table."""

    kind: str  # a scalar kind, or an object name (see OBJECTS)
    array: bool = False  # "Array of ..."
    mandatory: bool = False
    min_len: int | None = None  # strings: characters
    max_len: int | None = None
    minimum: float | None = None  # numbers: "Value range: a~b"
    maximum: float | None = None
    max_items: int | None = None  # arrays: "A maximum of N ... are allowed"
    options: frozenset[str] | None = None  # enumerations


def _s(
    min_len: int | None = None, max_len: int | None = None, options: set[str] | None = None
) -> Param:
    return Param(STRING, min_len=min_len, max_len=max_len, options=frozenset(options or ()) or None)


def _n(kind: str, minimum: float, maximum: float) -> Param:
    return Param(kind, minimum=minimum, maximum=maximum)


BOOL = Param(BOOLEAN)
TEXT = Param(STRING)
LANGUAGES = {
    "UNKNOW", "CN", "EN", "GER", "fr", "Kr", "por", "JPN", "Ita", "ESP", "DBH", "GT", "GXH",
    "HBH", "SXH", "SCH", "YY", "Russian", "Filipino", "Dutch", "Indonesian", "Vietnamese",
    "Arabic", "Turkish", "Malay", "Thai", "Finnish",
}  # fmt: skip
ASSET_TYPES = {
    "VOICE_MODEL", "VIDEO", "IMAGE", "PPT", "MATERIAL", "MUSIC", "AUDIO", "COMMON_FILE",
    "HUMAN_MODEL_2D", "BUSINESS_CARD_TEMPLET",
}  # fmt: skip
SYSTEM_PROPERTY_KEYS = {
    "BACKGROUND_IMG", "CREATED_BY_PLATFORM", "BACKGROUND_SCENE", "MEITUAN_MATERIAL_APPROVED",
    "IS_CONTROLLED", "LIVE_IS_AUTHORIZED", "VIDEO_IS_AUTHORIZED", "CHAT_IS_AUTHORIZED",
    "MATERIAL_IMG", "MATERIAL_VIDEO", "DIGITAL_HUMAN_2D_VIDEO", "BUSINESS_CARD_VIDEO",
    "BUSSINESS_CARD_VIDEO", "PHOTO_VIDEO",
}  # fmt: skip
DISPLAY_MODES = {"Horizontal", "Vertical"}
VOICE_FLAGS = (
    "is_support_phoneme_en", "is_support_phoneme", "is_support_break_time",
    "is_support_break_strength", "is_support_speed", "is_support_prosody",
    "is_support_ssml_say_as", "is_support_ssml_sub", "is_support_word", "is_support_voice_cache",
)  # fmt: skip
BODY = "UpdateDigitalAssetRequestBody"

OBJECTS: dict[str, dict[str, Param]] = {
    BODY: {
        "asset_name": _s(0, 256),
        "asset_description": _s(0, 4096),
        "asset_type": _s(options=ASSET_TYPES),
        # "Tenants can only activate or deactivate assets."
        "asset_state": _s(options={"ACTIVED", "UNACTIVED"}),
        "review_config": Param("ReviewConfig"),
        "tags": Param(STRING, array=True, max_len=128, max_items=50),
        "asset_extra_meta": Param("AssetExtraMeta"),
        "system_properties": Param("SystemProperty", array=True),
        "shared_config": Param("AssetSharedConfig"),
        "asset_order": _n(INTEGER, 0, 32767),
        "supported_service": Param(
            STRING, array=True, options=frozenset({"VIDEO_2D", "LIVE_2D", "CHAT_2D"})
        ),
        "auto_operation_config": Param("AutoOperationConfig", array=True),
    },
    "ReviewConfig": {"no_need_review": BOOL},
    "AssetExtraMeta": {
        "voice_model_meta": Param("VoiceModelAssetMeta"),
        "ppt_meta": Param("PPTAssetMeta"),
        "material_meta": Param("MaterialAssetMeta"),
        "human_model_2d_meta": Param("HumanModel2DAssetMeta"),
        "image_meta": Param("ImageAssetMeta"),
        "video_meta": Param("VideoAssetMeta"),
        "audio_meta": Param("AudioAssetMeta"),
    },
    "VoiceModelAssetMeta": {
        "order": _n(INTEGER, 0, 32767),
        "model_type": _s(options={"COMMON", "CLONE"}),
        "sex": _s(options={"UNKNOW", "MALE", "FEMALE"}),
        "language": _s(options=LANGUAGES),
        "languages": Param(STRING, array=True, options=frozenset(LANGUAGES)),
        "speed_ratio": _n(FLOAT, 0, 100),
        "volume_ratio": _n(FLOAT, 0, 100),
        "is_realtime_voice": BOOL,
        "style": TEXT,
        "voice_capability": Param("VoiceCapability"),
        "external_voice_meta": Param("ExternalVoiceAssetMeta"),
        "is_support_vc_process": BOOL,
        "is_support_thai_auto_split": BOOL,
        "is_flexus": BOOL,
        "is_enhance_rhythm": BOOL,
        "age": TEXT,
    },
    "VoiceCapability": {
        **dict.fromkeys(VOICE_FLAGS, BOOL),
        "conversion_rate": _n(FLOAT, 0, 50),
        "conversion_rate_en": _n(FLOAT, 0, 50),
        "is_support_srt": BOOL,
    },
    "ExternalVoiceAssetMeta": {
        "provider": Param(
            STRING,
            mandatory=True,
            options=frozenset(
                {"XIMALAYA", "HUAWEI_EI", "MOBVOI", "AUDIOX", "SINOVOICE", "DATABAKER", "AISPEECH"}
            ),
        ),
    },
    "PPTAssetMeta": {
        "auto_analysis": BOOL,
        "ppt_analysis_status": _s(
            options={"INITIALIZE", "WAITING", "CONVERTING", "FAILED", "SUCCEEDED", "CANCELED"}
        ),
        "error_info": Param("ErrorResponse"),
        "page_count": _n(INTEGER, 0, 256),
        "pages": Param("PPTPageInfo", array=True),
    },
    "PPTPageInfo": {
        "page_no": _n(INTEGER, 1, 256),
        "file_id": _s(1, 64),
        "page_content": _s(0, 2048),
    },
    "MaterialAssetMeta": {"components": Param("MaterialComponentInfo", array=True)},
    "MaterialComponentInfo": {
        "component_name": Param(STRING, mandatory=True),
        "component_type": Param(
            STRING,
            mandatory=True,
            options=frozenset({"CLOTHES", "PANTS", "SHOES", "HAIR", "EYELASH", "EYEBROW"}),
        ),
        "component_desc": TEXT,
    },
    "HumanModel2DAssetMeta": {
        "is_action_editable": BOOL,
        "is_live_copy": BOOL,
        "is_real_background": BOOL,
        "support_live": BOOL,
        "model_version": _s(options={"V2", "V3", "V3_2", "V3_3"}),
        "model_resolution": _s(options={"1080P", "4K"}),
        "device_names": Param(STRING, array=True, min_len=1, max_len=64, max_items=16),
        "is_with_action_library": BOOL,
        "action_tag_map": Param("ActionTagInfo", array=True),
        "is_flexus": BOOL,
        "voice_asset_id": TEXT,
    },
    "ActionTagInfo": {
        "action_name_zh": Param(STRING, mandatory=True),
        "action_name_en": Param(STRING, mandatory=True),
        "action_duration": _n(FLOAT, 0, 100),
        "catalog": TEXT,
        "file_name": _s(1, 256),
        "tag": TEXT,
    },
    "ImageAssetMeta": {
        "codec": _s(0, 32),
        "width": _n(INTEGER, 0, 8196),
        "height": _n(INTEGER, 0, 8196),
        "size": _n(LONG, 0, INT64_MAX),
        "mode": _s(options=DISPLAY_MODES),
        "frame_rate": _s(0, 32),
        "duration": _n(INTEGER, 0, 86400),
        "error_info": Param("ErrorResponse"),
    },
    "VideoAssetMeta": {
        "video_codec": _s(0, 32),
        "width": _n(INTEGER, 0, 8196),
        "height": _n(INTEGER, 0, 8196),
        "frame_rate": _s(0, 32),
        "video_bit_rate": _n(INTEGER, 0, 104857600),
        "duration": _n(INTEGER, 0, 86400),
        "audio_codec": _s(0, 32),
        "audio_bit_rate": _n(INTEGER, 0, 16384),
        "audio_channels": _n(INTEGER, 0, 100),
        "sample": _n(INTEGER, 0, 100000),
        "mode": _s(options=DISPLAY_MODES),
        "video_transcoding_status": _s(options={"WAITING", "TRANSCODING", "FAILED", "SUCCEEDED"}),
        "error_info": Param("ErrorResponse"),
    },
    "AudioAssetMeta": {
        "duration": _n(INTEGER, 0, 86400),
        "audio_codec": _s(0, 32),
        "audio_bit_rate": _n(INTEGER, 0, 16384),
        "audio_channels": _n(INTEGER, 0, 100),
        "sample": _n(INTEGER, 0, 100000),
        "error_info": Param("ErrorResponse"),
    },
    "ErrorResponse": {"error_code": TEXT, "error_msg": TEXT},
    "SystemProperty": {
        "action": _s(options={"ADD", "DELETE"}),
        "key": _s(options=SYSTEM_PROPERTY_KEYS),
        "value": _s(1, 1024),
    },
    "AssetSharedConfig": {
        "shared_type": _s(options={"PRIVATE", "PUBLIC", "SHARED"}),
        "expire_time": TEXT,
        "allowed_project_ids": Param(STRING, array=True),
    },
    # The request page names this object without its table; the response table gives the fields.
    "AutoOperationConfig": {
        "operation": _s(options={"BLOCK", "DELETE"}),
        "operation_time": TEXT,
    },
}

# Accepted by Update Asset, never returned by Show or List (the response tables lack them).
WRITE_ONLY = frozenset({"review_config", "shared_config"})

MAX_PROBLEMS = 5


class BodyProblems(Exception):
    """The body breaks the table; ``problems`` are ``path: what is wrong`` (at most five)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def check_body(body: Any, stored: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The body with ``null`` fields removed, or :class:`BodyProblems` for what breaks the table.

    The emulator plays a service newer than the reference's tables: a field the stored asset
    (``stored``) holds inside an ``asset_extra_meta`` block, also inside the block's list items
    by position, is a field the service returns, so it is accepted back at the same place as it
    is.  Anything else the tables do not name is refused.
    """
    problems: list[str] = []
    returned = {"asset_extra_meta": stored.get("asset_extra_meta")} if stored else None
    cleaned = _object(BODY, body, "", problems, returned)
    if problems:
        raise BodyProblems(problems[:MAX_PROBLEMS])
    return cleaned


def _object(
    name: str, value: Any, path: str, problems: list[str], returned: Any = None
) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        problems.append(f"{path or 'body'}: must be an object ({name})")
        return {}
    table = OBJECTS[name]
    out: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else str(key)
        param = table.get(key)
        held = returned.get(key) if isinstance(returned, Mapping) else None
        if param is None and isinstance(returned, Mapping) and key in returned:
            out[key] = item  # a field the service itself returned here
        elif param is None:
            problems.append(f"{where}: unknown field of {name}")
        elif item is not None:
            out[key] = _value(param, item, where, problems, held)
    for key, param in table.items():
        if param.mandatory and value.get(key) is None:
            where = f"{path}.{key}" if path else key
            problems.append(f"{where}: mandatory in {name}")
    return out


def _value(param: Param, value: Any, path: str, problems: list[str], returned: Any = None) -> Any:
    if param.array:
        if not isinstance(value, list):
            problems.append(f"{path}: must be an array")
            return value
        if param.max_items is not None and len(value) > param.max_items:
            problems.append(f"{path}: at most {param.max_items} items")
        single = Param(**{**param.__dict__, "array": False, "max_items": None})
        # A field the service returns on any item of this list is accepted back on any item:
        # a client that reorders the items carries each item's fields along with it.
        held: dict[str, Any] = {}
        for stored in returned if isinstance(returned, list) else ():
            if isinstance(stored, Mapping):
                for key, field_value in stored.items():
                    held.setdefault(key, field_value)
        return [
            _value(single, item, f"{path}[{i}]", problems, held or None)
            for i, item in enumerate(value)
        ]
    if param.kind in OBJECTS:
        return _object(param.kind, value, path, problems, returned)
    _scalar(param, value, path, problems)
    return value


def _scalar(param: Param, value: Any, path: str, problems: list[str]) -> None:
    if param.kind == STRING:
        if not isinstance(value, str):
            problems.append(f"{path}: must be a string")
        elif param.options is not None and value not in param.options:
            problems.append(f"{path}: {value!r} is not one of {', '.join(sorted(param.options))}")
        elif param.min_len is not None and len(value) < param.min_len:
            problems.append(f"{path}: at least {param.min_len} characters")
        elif param.max_len is not None and len(value) > param.max_len:
            problems.append(f"{path}: at most {param.max_len} characters")
        return
    if param.kind == BOOLEAN:
        if not isinstance(value, bool):
            problems.append(f"{path}: must be true or false")
        return
    whole = param.kind in (INTEGER, LONG)
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or (whole and not isinstance(value, int)):
        problems.append(f"{path}: must be {'an integer' if whole else 'a number'}")
        return
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{path}: must be a finite number")
    elif param.minimum is not None and value < param.minimum:
        problems.append(f"{path}: at least {_bound(param.minimum)}")
    elif param.maximum is not None and value > param.maximum:
        problems.append(f"{path}: at most {_bound(param.maximum)}")


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
