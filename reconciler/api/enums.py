"""Enumerations of the MetaStudio digital-asset API, spelled exactly as the service spells them.

Each is a ``Literal`` so that request models reject anything else and the JSON Schema lists the
allowed values; responses read them as plain strings (the service may add values).
"""

from typing import Literal

AssetType = Literal[
    "VOICE_MODEL",
    "VIDEO",
    "IMAGE",
    "PPT",
    "MATERIAL",
    "MUSIC",
    "AUDIO",
    "COMMON_FILE",
    "HUMAN_MODEL_2D",
    "BUSINESS_CARD_TEMPLET",
]
# States a tenant may set through Update Asset; every other state is the system's.
SettableAssetState = Literal["ACTIVED", "UNACTIVED"]
# States in which an asset cannot be updated (docs/field-semantics.md §9).
NON_UPDATABLE_STATES = frozenset({"CREATING", "FAILED", "DELETING", "DELETED", "BLOCK"})

VoiceModelType = Literal["COMMON", "CLONE"]
VoiceSex = Literal["UNKNOW", "MALE", "FEMALE"]
VoiceLanguage = Literal[
    "UNKNOW",
    "CN",
    "EN",
    "GER",
    "fr",
    "Kr",
    "por",
    "JPN",
    "Ita",
    "ESP",
    "DBH",
    "GT",
    "GXH",
    "HBH",
    "SXH",
    "SCH",
    "YY",
    "Russian",
    "Filipino",
    "Dutch",
    "Indonesian",
    "Vietnamese",
    "Arabic",
    "Turkish",
    "Malay",
    "Thai",
    "Finnish",
]
ModelVersion = Literal["V2", "V3", "V3_2", "V3_3"]
ModelResolution = Literal["1080P", "4K"]
PptAnalysisStatus = Literal[
    "INITIALIZE", "WAITING", "CONVERTING", "FAILED", "SUCCEEDED", "CANCELED"
]
TranscodingStatus = Literal["WAITING", "TRANSCODING", "FAILED", "SUCCEEDED"]
DisplayMode = Literal["Horizontal", "Vertical"]
ComponentType = Literal["CLOTHES", "PANTS", "SHOES", "HAIR", "EYELASH", "EYEBROW"]
VoiceProvider = Literal[
    "XIMALAYA", "HUAWEI_EI", "MOBVOI", "AUDIOX", "SINOVOICE", "DATABAKER", "AISPEECH"
]
SharedType = Literal["PRIVATE", "PUBLIC", "SHARED"]
SystemPropertyAction = Literal["ADD", "DELETE"]
SystemPropertyKey = Literal[
    "BACKGROUND_IMG",
    "CREATED_BY_PLATFORM",
    "BACKGROUND_SCENE",
    "MEITUAN_MATERIAL_APPROVED",
    "IS_CONTROLLED",
    "LIVE_IS_AUTHORIZED",
    "VIDEO_IS_AUTHORIZED",
    "CHAT_IS_AUTHORIZED",
    "MATERIAL_IMG",
    "MATERIAL_VIDEO",
    "DIGITAL_HUMAN_2D_VIDEO",
    "BUSINESS_CARD_VIDEO",
    "BUSSINESS_CARD_VIDEO",
    "PHOTO_VIDEO",
]
AutoOperation = Literal["BLOCK", "DELETE"]
SupportedService = Literal["VIDEO_2D", "LIVE_2D", "CHAT_2D"]

# Which asset_extra_meta block belongs to which asset_type (docs/field-semantics.md §6).
EXTRA_META_FOR_TYPE: dict[str, str] = {
    "VOICE_MODEL": "voice_model_meta",
    "PPT": "ppt_meta",
    "MATERIAL": "material_meta",
    "HUMAN_MODEL_2D": "human_model_2d_meta",
    "IMAGE": "image_meta",
    "VIDEO": "video_meta",
    "AUDIO": "audio_meta",
    "MUSIC": "audio_meta",
}
