"""What the JSON Schema tells an editor about each field: the API reference's descriptions,
its defaults and the meaning of each enumeration value, plus examples.

Kept apart from the models so that the models stay about validation; :func:`describe` adds
these to the generated schema, and a test checks that every property ends up described.
Keys are the schema's ``$defs`` names (the model classes) and ``""`` for the document itself.
"""

from __future__ import annotations

from typing import Any

_ROOT: dict[str, str] = {
    "apiVersion": "Manifest format version; always reconciler.metastudio/v1.",
    "kind": "Document kind; always DigitalAsset.",
    "metadata": "Which live asset this manifest manages, and local bookkeeping (never sent).",
}

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "": _ROOT,
    "ReviewConfig": {
        "no_need_review": "Content review whitelist: skip the automatic review. Only for "
        "users on the whitelist; the auto review policies apply to everyone else.",
    },
    "AssetSharedConfig": {
        "shared_type": "Sharing type: PRIVATE (own tenant only), PUBLIC (all tenants; system "
        "assets only), SHARED (the tenants in allowed_project_ids).",
        "expire_time": "When the sharing expires (RFC 3339). Service default: 30 days, at "
        "23:59:59 of the day sharing starts plus 30 days.",
        "allowed_project_ids": "Tenants (project IDs) allowed to access the asset; order is "
        "ignored.",
    },
    "AutoOperationConfig": {
        "operation": "What happens at operation_time: BLOCK (freeze the asset) or DELETE.",
        "operation_time": "When the operation runs, RFC 3339 (e.g. 2025-01-10T00:00:00Z).",
    },
    "ManifestAssetExtraMeta": {
        "voice_model_meta": "Timbre model metadata (asset_type VOICE_MODEL).",
        "ppt_meta": "PPT asset metadata (asset_type PPT).",
        "material_meta": "Material metadata (asset_type MATERIAL).",
        "human_model_2d_meta": "Virtual avatar model metadata (asset_type HUMAN_MODEL_2D).",
    },
    "ManifestVoiceModelMeta": {
        "order": "Display order, 0-32767. Service default: 999.",
        "model_type": "Voice asset type: COMMON (general emotional model) or CLONE (voice "
        "clone). Service default: CLONE.",
        "sex": "Voice gender: UNKNOW (the API's spelling of unknown), MALE, FEMALE. Service "
        "default: UNKNOW.",
        "language": "Voice language, e.g. CN Chinese, EN English, GER German, fr French, Kr "
        "Korean, por Portuguese, JPN Japanese, Ita Italian, ESP Spanish, YY Cantonese (values "
        "are case-sensitive). Service default: UNKNOW.",
        "languages": "Voice languages, same values as language; order is ignored.",
        "speed_ratio": "Speaking speed zoom ratio, 0-100. Service default: 1.",
        "volume_ratio": "Volume zoom ratio, 0-100. Service default: 1.",
        "is_realtime_voice": "Whether the timbre supports real-time synthesis (needed for "
        "livestreaming and intelligent interaction; otherwise video production only). Service "
        "default: true.",
        "style": "Style reference.",
        "external_voice_meta": "Third-party TTS timbre metadata.",
        "is_support_vc_process": "Whether voice conversion (VC) is supported. Service default: "
        "false.",
        "is_support_thai_auto_split": "Whether auto text splitting is supported for Thai. "
        "Service default: false.",
        "is_flexus": "Whether the voice is of the Flexus edition. Service default: false.",
        "is_enhance_rhythm": "Whether to enhance rhythm. Service default: false.",
        "age": "Timbre age group: young, middle-aged or elderly (free text).",
    },
    "ExternalVoiceAssetMeta": {
        "provider": "Third-party TTS vendor: XIMALAYA, HUAWEI_EI (Huawei Cloud EI TTS), "
        "MOBVOI, AUDIOX, SINOVOICE, DATABAKER, AISPEECH.",
    },
    "ManifestPPTMeta": {
        "auto_analysis": "Whether the PowerPoint file is parsed automatically. Complex or "
        "highly compressed files may fail; only the first 50 pages are converted. Service "
        "default: false.",
        "page_count": "Total number of PowerPoint pages, 0-256. Service default: 0.",
        "pages": "The page images, in page order.",
    },
    "PPTPageInfo": {
        "page_no": "Page number, 1-256.",
        "file_id": "ID of the image file of this page, 1-64 characters.",
        "page_content": "Content of this page, 0-2048 characters.",
    },
    "MaterialAssetMeta": {
        "components": "Replaceable material components.",
    },
    "MaterialComponentInfo": {
        "component_name": "Material component name.",
        "component_type": "Material component type: CLOTHES, PANTS, SHOES, HAIR, EYELASH or "
        "EYEBROW.",
        "component_desc": "Material component description.",
    },
    "HumanModel2DAssetMeta": {
        "is_action_editable": "Whether the avatar's actions can be edited. Service default: "
        "false.",
        "is_live_copy": "Whether this is a task for training a livestream-based avatar. "
        "Service default: false.",
        "is_real_background": "Whether it is a real-scene avatar (its background need not be "
        "changed). Service default: false.",
        "support_live": "Whether livestreaming is supported. Service default: false.",
        "model_version": "Avatar model version: V2, V3, V3_2 (V3.2), V3_3 (V3.3). Service "
        "default: V2.",
        "model_resolution": "Avatar model resolution: 1080P (outputs 1080P/720P) or 4K "
        "(outputs 4K/1080P/720P). Service default: 1080P.",
        "device_names": "Devices for which compilation tasks have been run: up to 16 names of "
        "1-64 characters; order is ignored.",
        "is_with_action_library": "Whether the avatar has an atomic action library. Service "
        "default: false.",
        "action_tag_map": "Action tag mapping (ordered).",
        "is_flexus": "Whether it is a Flexus virtual avatar. Service default: false.",
        "voice_asset_id": "ID of the voice asset associated with the avatar.",
    },
    "ActionTagInfo": {
        "action_name_zh": "Atomic action name in Chinese.",
        "action_name_en": "Atomic action name in English.",
        "action_duration": "Action duration, 0-100.",
        "catalog": "Action category name.",
        "file_name": "Sample video file name, 1-256 characters.",
        "tag": "Action tag.",
    },
}

EXAMPLES: dict[str, dict[str, list[Any]]] = {
    "": {
        "apiVersion": ["reconciler.metastudio/v1"],
        "kind": ["DigitalAsset"],
    },
    "Metadata": {
        "asset_id": ["93769b5a-c8c6-4692-9c95-53933a1f0c93"],
        "target": ["prod"],
        "app_user_id": ["partner-42"],
        "labels": [{"team": "marketing"}],
    },
    "AssetSpec": {
        "asset_name": ["Sara Model"],
        "asset_state": ["ACTIVED"],
        "tags": [["NEWS", "FEMALE"]],
        "system_properties": [{"BACKGROUND_SCENE": "Horizontal"}],
        "asset_order": [10],
        "supported_service": [["VIDEO_2D", "LIVE_2D"]],
        "auto_operation_config": [
            [{"operation": "BLOCK", "operation_time": "2025-01-10T00:00:00Z"}]
        ],
    },
    "AutoOperationConfig": {"operation_time": ["2025-01-10T00:00:00Z"]},
    "AssetSharedConfig": {"expire_time": ["2025-12-31T23:59:59Z"]},
}

DOCUMENT_EXAMPLE: dict[str, Any] = {
    "apiVersion": "reconciler.metastudio/v1",
    "kind": "DigitalAsset",
    "metadata": {"asset_id": "93769b5a-c8c6-4692-9c95-53933a1f0c93", "labels": {"team": "news"}},
    "spec": {
        "asset_name": "Sara Model",
        "asset_description": "Virtual employee",
        "asset_state": "ACTIVED",
        "tags": ["NEWS", "FEMALE"],
        "asset_extra_meta": {
            "human_model_2d_meta": {"support_live": True, "model_resolution": "1080P"}
        },
    },
}


def describe(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the descriptions and examples above to a generated manifest schema (in place).

    A description the model already gives wins: it says what reconciler does with the field.
    """
    places: list[tuple[str, dict[str, Any]]] = [("", schema)]
    places += list(schema.get("$defs", {}).items())
    for name, node in places:
        properties = node.get("properties", {})
        for key, text in DESCRIPTIONS.get(name, {}).items():
            if key in properties:
                properties[key].setdefault("description", text)
        for key, examples in EXAMPLES.get(name, {}).items():
            if key in properties:
                properties[key].setdefault("examples", examples)
    schema["examples"] = [DOCUMENT_EXAMPLE]
    return schema
