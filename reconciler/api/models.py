"""pydantic models of the MetaStudio Update Asset API.

The request models are written once, strictly: unknown keys are errors, every length, count,
range and enumeration the API reference gives is enforced, and their JSON Schema carries the same
constraints.  Responses must never crash a plan when the service adds a field or an enum value,
so each request model has a *lenient twin* (``Live...``) derived from it by :func:`lenient`:
same fields, everything optional, enumerations read as plain strings, ranges not checked, unknown
keys kept.  One definition, two strictnesses, no drift between them.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from reconciler.api import enums

Str32 = Annotated[str, StringConstraints(max_length=32)]
Tag = Annotated[str, StringConstraints(max_length=128)]
DeviceName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Duration = Annotated[int, Field(ge=0, le=86400)]
Pixels = Annotated[int, Field(ge=0, le=8196)]
Ratio = Annotated[float, Field(ge=0, le=100)]
ConversionRate = Annotated[float, Field(ge=0, le=50)]
Order = Annotated[int, Field(ge=0, le=32767)]


class RequestModel(BaseModel):
    """Base of every request model: strict types, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=False)


class ReviewConfig(RequestModel):
    no_need_review: bool | None = None


class ErrorResponse(RequestModel):
    error_code: str | None = None
    error_msg: str | None = None


class VoiceCapability(RequestModel):
    is_support_phoneme_en: bool | None = None
    is_support_phoneme: bool | None = None
    is_support_break_time: bool | None = None
    is_support_break_strength: bool | None = None
    is_support_speed: bool | None = None
    is_support_prosody: bool | None = None
    is_support_ssml_say_as: bool | None = None
    is_support_ssml_sub: bool | None = None
    is_support_word: bool | None = None
    is_support_voice_cache: bool | None = None
    conversion_rate: ConversionRate | None = None
    conversion_rate_en: ConversionRate | None = None
    is_support_srt: bool | None = None


class ExternalVoiceAssetMeta(RequestModel):
    provider: enums.VoiceProvider


class VoiceModelAssetMeta(RequestModel):
    order: Order | None = None
    model_type: enums.VoiceModelType | None = None
    sex: enums.VoiceSex | None = None
    language: enums.VoiceLanguage | None = None
    languages: list[enums.VoiceLanguage] | None = None
    speed_ratio: Ratio | None = None
    volume_ratio: Ratio | None = None
    is_realtime_voice: bool | None = None
    style: str | None = None
    voice_capability: VoiceCapability | None = None
    external_voice_meta: ExternalVoiceAssetMeta | None = None
    is_support_vc_process: bool | None = None
    is_support_thai_auto_split: bool | None = None
    is_flexus: bool | None = None
    is_enhance_rhythm: bool | None = None
    age: str | None = None


class PPTPageInfo(RequestModel):
    page_no: Annotated[int, Field(ge=1, le=256)] | None = None
    file_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    page_content: Annotated[str, StringConstraints(max_length=2048)] | None = None


class PPTAssetMeta(RequestModel):
    auto_analysis: bool | None = None
    ppt_analysis_status: enums.PptAnalysisStatus | None = None
    error_info: ErrorResponse | None = None
    page_count: Annotated[int, Field(ge=0, le=256)] | None = None
    pages: list[PPTPageInfo] | None = None


class MaterialComponentInfo(RequestModel):
    component_name: str
    component_type: enums.ComponentType
    component_desc: str | None = None


class MaterialAssetMeta(RequestModel):
    components: list[MaterialComponentInfo] | None = None


class ActionTagInfo(RequestModel):
    action_name_zh: str
    action_name_en: str
    action_duration: Ratio | None = None
    catalog: str | None = None
    file_name: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    tag: str | None = None


class HumanModel2DAssetMeta(RequestModel):
    is_action_editable: bool | None = None
    is_live_copy: bool | None = None
    is_real_background: bool | None = None
    support_live: bool | None = None
    model_version: enums.ModelVersion | None = None
    model_resolution: enums.ModelResolution | None = None
    device_names: Annotated[list[DeviceName], Field(max_length=16)] | None = None
    is_with_action_library: bool | None = None
    action_tag_map: list[ActionTagInfo] | None = None
    is_flexus: bool | None = None
    voice_asset_id: str | None = None


class ImageAssetMeta(RequestModel):
    codec: Str32 | None = None
    width: Pixels | None = None
    height: Pixels | None = None
    size: Annotated[int, Field(ge=0, le=9223372036854775807)] | None = None
    mode: enums.DisplayMode | None = None
    frame_rate: Str32 | None = None
    duration: Duration | None = None
    error_info: ErrorResponse | None = None


class VideoAssetMeta(RequestModel):
    video_codec: Str32 | None = None
    width: Pixels | None = None
    height: Pixels | None = None
    frame_rate: Str32 | None = None
    video_bit_rate: Annotated[int, Field(ge=0, le=104857600)] | None = None
    duration: Duration | None = None
    audio_codec: Str32 | None = None
    audio_bit_rate: Annotated[int, Field(ge=0, le=16384)] | None = None
    audio_channels: Annotated[int, Field(ge=0, le=100)] | None = None
    sample: Annotated[int, Field(ge=0, le=100000)] | None = None
    mode: enums.DisplayMode | None = None
    video_transcoding_status: enums.TranscodingStatus | None = None
    error_info: ErrorResponse | None = None


class AudioAssetMeta(RequestModel):
    duration: Duration | None = None
    audio_codec: Str32 | None = None
    audio_bit_rate: Annotated[int, Field(ge=0, le=16384)] | None = None
    audio_channels: Annotated[int, Field(ge=0, le=100)] | None = None
    sample: Annotated[int, Field(ge=0, le=100000)] | None = None
    error_info: ErrorResponse | None = None


class AssetExtraMeta(RequestModel):
    voice_model_meta: VoiceModelAssetMeta | None = None
    ppt_meta: PPTAssetMeta | None = None
    material_meta: MaterialAssetMeta | None = None
    human_model_2d_meta: HumanModel2DAssetMeta | None = None
    image_meta: ImageAssetMeta | None = None
    video_meta: VideoAssetMeta | None = None
    audio_meta: AudioAssetMeta | None = None


class SystemProperty(RequestModel):
    action: enums.SystemPropertyAction | None = None
    key: enums.SystemPropertyKey | None = None
    value: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None


class AssetSharedConfig(RequestModel):
    shared_type: enums.SharedType | None = None
    expire_time: str | None = None
    allowed_project_ids: list[str] | None = None


class AutoOperationConfig(RequestModel):
    operation: enums.AutoOperation | None = None
    operation_time: str | None = None


class UpdateDigitalAssetRequestBody(RequestModel):
    """The body of ``PUT /v1/{project_id}/digital-assets/{asset_id}``."""

    asset_name: Annotated[str, StringConstraints(max_length=256)] | None = None
    asset_description: Annotated[str, StringConstraints(max_length=4096)] | None = None
    asset_type: enums.AssetType | None = None
    asset_state: enums.SettableAssetState | None = None
    review_config: ReviewConfig | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    asset_extra_meta: AssetExtraMeta | None = None
    system_properties: list[SystemProperty] | None = None
    shared_config: AssetSharedConfig | None = None
    asset_order: Order | None = None
    supported_service: list[enums.SupportedService] | None = None
    auto_operation_config: list[AutoOperationConfig] | None = None


# --- lenient twins for responses -------------------------------------------------------------

_LENIENT_CACHE: dict[type[BaseModel], type[BaseModel]] = {}


def _loosen(tp: Any) -> Any:
    """Map a strict annotation to its lenient form: Literal -> str, constraints dropped."""
    origin = get_origin(tp)
    if origin is Literal:
        return str
    if origin is Annotated:
        return _loosen(get_args(tp)[0])
    if origin is list:
        return list[_loosen(get_args(tp)[0])]  # type: ignore[misc]
    if origin in (Union, types.UnionType):
        loosened = tuple(_loosen(arg) for arg in get_args(tp))
        return Union[loosened]  # noqa: UP007
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return lenient(tp)
    return tp


def lenient(model: type[BaseModel]) -> type[BaseModel]:
    """The lenient twin of a request model: same fields, all optional, unknown keys kept."""
    if model not in _LENIENT_CACHE:
        fields: dict[str, Any] = {
            name: (_loosen(info.annotation) | None, None)
            for name, info in model.model_fields.items()
        }
        _LENIENT_CACHE[model] = create_model(
            f"Live{model.__name__}",
            __config__=ConfigDict(extra="allow", defer_build=True),
            __module__=__name__,
            **fields,
        )
    return _LENIENT_CACHE[model]


LiveAssetExtraMeta = lenient(AssetExtraMeta)
LiveSystemProperty = lenient(SystemProperty)
LiveAutoOperationConfig = lenient(AutoOperationConfig)


class ResponseModel(BaseModel):
    """Base of response models: lax types, unknown keys kept (the service evolves)."""

    model_config = ConfigDict(extra="allow", defer_build=True)


class FileExtraMeta(ResponseModel):
    video_transcoding_status: str | None = None


class AssetFileInfo(ResponseModel):
    file_id: str | None = None
    file_name: str | None = None
    file_md5: str | None = None
    file_size: int | None = None
    file_type: str | None = None
    asset_file_category: str | None = None
    download_url: str | None = None
    state: str | None = None
    block_reason_code: str | None = None
    reason: str | None = None
    file_extra_meta: FileExtraMeta | None = None


class DigitalAssetInfo(ResponseModel):
    """One asset as list, show and update return it."""

    project_id: str | None = None
    asset_id: str
    produce_id: str | None = None
    asset_name: str | None = None
    asset_description: str | None = None
    app_user_id: str | None = None
    create_time: str | None = None
    update_time: str | None = None
    asset_type: str | None = None
    asset_state: str | None = None
    fail_type: str | None = None
    block_reason_code: str | None = None
    reason: str | None = None
    tags: list[str] | None = None
    asset_extra_meta: LiveAssetExtraMeta | None = None  # type: ignore[valid-type]
    system_properties: list[LiveSystemProperty] | None = None  # type: ignore[valid-type]
    files: list[AssetFileInfo] | None = None
    asset_order: int | None = None
    supported_service: list[str] | None = None
    auto_operation_config: list[LiveAutoOperationConfig] | None = None  # type: ignore[valid-type]


class ListAssetsResponse(ResponseModel):
    count: int = 0
    assets: list[DigitalAssetInfo] = Field(default_factory=list)


class ErrorBody(ResponseModel):
    """The error body every MetaStudio and API-gateway error uses."""

    error_code: str | None = None
    error_msg: str | None = None
    request_id: str | None = None


# Response fields that the Update Asset body cannot carry (the service sets them).
RESPONSE_ONLY_FIELDS = frozenset(
    {
        "project_id",
        "asset_id",
        "produce_id",
        "app_user_id",
        "create_time",
        "update_time",
        "fail_type",
        "block_reason_code",
        "reason",
        "files",
    }
)
