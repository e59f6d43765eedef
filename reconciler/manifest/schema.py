"""The manifest model: a ``DigitalAsset`` document and its JSON Schema.

``spec`` is the Update Asset request body (the strict models of :mod:`reconciler.api.models`)
with the differences that make it a *declaration* rather than a request:

- ``system_properties`` is a map ``KEY: value`` managed per key (``KEY: null`` deletes KEY); the
  engine turns it into ADD/DELETE operations;
- read-only fields (:data:`READ_ONLY_FIELDS`) are refused with the reason, because the service
  fills them itself and a manifest value could never take effect;
- only one ``asset_extra_meta`` block, and it must match ``asset_type`` when that is given.

A field left out is unmanaged; explicit ``null`` is refused by the loader (see
``docs/manifests.md``), and never allowed by the JSON Schema, except as the value of a
``system_properties`` key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from reconciler.api import enums
from reconciler.api.fields import READ_ONLY_FIELDS
from reconciler.api.models import (
    AssetExtraMeta,
    AssetSharedConfig,
    AutoOperationConfig,
    Order,
    PPTAssetMeta,
    RequestModel,
    ReviewConfig,
    Tag,
    VoiceModelAssetMeta,
)
from reconciler.constants import LIST_ITEM_IDENTITY
from reconciler.manifest.schema_docs import describe

API_VERSION = "reconciler.metastudio/v1"
KIND = "DigitalAsset"
# Where `import` writes the schema beside the manifests it creates (see docs/manifests.md).
SCHEMA_FILE_NAME = "manifest.schema.json"

NULL_MESSAGE = (
    "null is not allowed: leave the field out to leave it unmanaged, or give an empty value "
    'to clear it (e.g. tags: [] or asset_description: "")'
)


@dataclass(frozen=True)
class ReadOnly:
    """Marks a field that the service fills: any value is refused with the reason."""

    path: tuple[str, ...]

    @property
    def reason(self) -> str:
        return READ_ONLY_FIELDS[self.path]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        reason = self.reason

        def refuse(value: Any) -> Any:
            raise PydanticCustomError("read_only", reason)

        return core_schema.no_info_plain_validator_function(refuse)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"not": {}, "description": self.reason}


class ManifestVoiceModelMeta(VoiceModelAssetMeta):
    """Voice model metadata (asset_type VOICE_MODEL)."""

    voice_capability: Annotated[
        Any, ReadOnly(("asset_extra_meta", "voice_model_meta", "voice_capability"))
    ] = None


class ManifestPPTMeta(PPTAssetMeta):
    """PPT metadata (asset_type PPT)."""

    ppt_analysis_status: Annotated[
        Any, ReadOnly(("asset_extra_meta", "ppt_meta", "ppt_analysis_status"))
    ] = None
    error_info: Annotated[Any, ReadOnly(("asset_extra_meta", "ppt_meta", "error_info"))] = None


class ManifestAssetExtraMeta(AssetExtraMeta):
    """Type-specific metadata: exactly one block, the one matching the asset's type."""

    voice_model_meta: ManifestVoiceModelMeta | None = None
    ppt_meta: ManifestPPTMeta | None = None
    image_meta: Annotated[Any, ReadOnly(("asset_extra_meta", "image_meta"))] = None
    video_meta: Annotated[Any, ReadOnly(("asset_extra_meta", "video_meta"))] = None
    audio_meta: Annotated[Any, ReadOnly(("asset_extra_meta", "audio_meta"))] = None

    @model_validator(mode="after")
    def _distinct_item_identities(self) -> ManifestAssetExtraMeta:
        """The items of an ordered list are matched with live by an identity key, so that each
        keeps its own unwritten values (docs/field-semantics.md, "Ordered lists of objects");
        two items with the same one could not be told apart."""
        for (_, block, key), identity in LIST_ITEM_IDENTITY.items():
            items = getattr(getattr(self, block, None), key, None) or ()
            seen: dict[str, int] = {}
            for position, item in enumerate(items):
                value = getattr(item, identity, None)
                if value is None:
                    continue
                first = seen.setdefault(value, position)
                if first != position:
                    raise PydanticCustomError(
                        "duplicate_identity",
                        "{key}[{first}] has the same {identity} {value}: {identity} tells the "
                        "items of {key} apart (each keeps its own values), so give each item "
                        "its own",
                        {
                            "key": key,
                            "first": first,
                            "identity": identity,
                            "value": json.dumps(value, ensure_ascii=False),
                            "at": (block, key, position, identity),
                        },
                    )
        return self


SystemPropertyValue = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class AssetSpec(RequestModel):
    """The desired state of one asset: the Update Asset body, declared rather than requested."""

    asset_name: (
        Annotated[
            str,
            StringConstraints(max_length=256),
            Field(description="Asset name, 0-256 characters."),
        ]
        | None
    ) = None
    asset_description: (
        Annotated[
            str,
            StringConstraints(max_length=4096),
            Field(description="Asset description, 0-4096 characters."),
        ]
        | None
    ) = None
    asset_type: (
        Annotated[
            enums.AssetType,
            Field(
                description="Asset type: VOICE_MODEL (voice model), VIDEO, IMAGE, PPT (slides), "
                "MATERIAL (stylized material), MUSIC, AUDIO, COMMON_FILE (generic file), "
                "HUMAN_MODEL_2D (2D avatar model), BUSINESS_CARD_TEMPLET (avatar business-card "
                "template). When given, asset_extra_meta must use the matching block. "
                "VOICE_MODEL and HUMAN_MODEL_2D cannot be set by normal users."
            ),
        ]
        | None
    ) = None
    asset_state: (
        Annotated[
            enums.SettableAssetState,
            Field(
                description="ACTIVED (active, usable) or UNACTIVED (uploaded, not active): the "
                "only states a tenant may set; the service sets the others."
            ),
        ]
        | None
    ) = None
    review_config: (
        Annotated[
            ReviewConfig,
            Field(description="Write-only (never returned by the API): content review settings."),
        ]
        | None
    ) = None
    tags: (
        Annotated[
            list[Tag],
            Field(
                max_length=50,
                description="Up to 50 tags of 0-128 characters; order is ignored. System "
                "avatar tags: industry NEWS, BUSINESS, E-COMMERCE, MARKETING, KNOWLEDGE, "
                "EDUCATION, SPORTS; gender MALE, FEMALE; pose FULL-BODY, HALF-BODY, STANDING, "
                "SITTING, WALKING; region ASIAN, WESTERN, MIDDLE-EASTERNER, AFRICAN, LATINO.",
            ),
        ]
        | None
    ) = None
    asset_extra_meta: (
        Annotated[
            ManifestAssetExtraMeta,
            Field(description="Type-specific metadata; only the block matching asset_type."),
        ]
        | None
    ) = None
    system_properties: (
        Annotated[
            dict[enums.SystemPropertyKey, SystemPropertyValue | None],
            Field(
                description="System properties as a map KEY: value (value 1-1024 characters), "
                "managed per key: a named key is added or changed, KEY: null deletes it, and a "
                "key the map does not name is left alone. The PUT carries the ADD/DELETE "
                "operations for the named keys. The reference says common users cannot modify "
                "system properties: the service may refuse them for accounts that are not "
                "administrators. Keys: BACKGROUND_IMG (2D background image, "
                "Yes), CREATED_BY_PLATFORM (generated by the platform), BACKGROUND_SCENE (2D "
                "background scene: Horizontal or Vertical), MEITUAN_MATERIAL_APPROVED (YES), "
                "IS_CONTROLLED (voice and avatar only, YES), LIVE_IS_AUTHORIZED, "
                "VIDEO_IS_AUTHORIZED, CHAT_IS_AUTHORIZED (authorized for livestream, video "
                "production, intelligent interaction: YES); avatar assets: MATERIAL_IMG (image "
                "layer, Yes), MATERIAL_VIDEO (video layer, Yes), DIGITAL_HUMAN_2D_VIDEO, "
                "BUSINESS_CARD_VIDEO (BUSSINESS_CARD_VIDEO is the deprecated spelling), "
                "PHOTO_VIDEO."
            ),
        ]
        | None
    ) = None
    shared_config: (
        Annotated[
            AssetSharedConfig,
            Field(description="Write-only (never returned by the API): sharing settings."),
        ]
        | None
    ) = None
    asset_order: (
        Annotated[Order, Field(description="Display order on the console, 0-32767.")] | None
    ) = None
    supported_service: (
        Annotated[
            list[enums.SupportedService],
            Field(
                description="Services the asset supports: VIDEO_2D (avatar video production), "
                "LIVE_2D (avatar livestream), CHAT_2D (avatar intelligent interaction); order "
                "is ignored."
            ),
        ]
        | None
    ) = None
    auto_operation_config: (
        Annotated[
            list[AutoOperationConfig],
            Field(description="Automatic BLOCK/DELETE operations at RFC 3339 times (ordered)."),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _one_matching_extra_meta(self) -> AssetSpec:
        """Only the block matching the asset type is meaningful (docs/field-semantics.md §6)."""
        extra = self.asset_extra_meta
        if extra is None:
            return self
        blocks = [name for name in type(extra).model_fields if name in extra.model_fields_set]
        if len(blocks) > 1:
            raise PydanticCustomError(
                "extra_meta_blocks",
                "asset_extra_meta has {count} blocks ({blocks}); an asset has one type, so give "
                "only the block for that type",
                {"count": len(blocks), "blocks": ", ".join(blocks), "at": ("asset_extra_meta",)},
            )
        if blocks and self.asset_type is not None:
            expected = enums.EXTRA_META_FOR_TYPE.get(self.asset_type)
            if blocks[0] != expected:
                if expected is None:
                    allowed = "no asset_extra_meta block"
                elif ("asset_extra_meta", expected) in READ_ONLY_FIELDS:
                    allowed = f"no settable block ({expected} is read-only)"
                else:
                    allowed = f"only {expected}"
                raise PydanticCustomError(
                    "extra_meta_mismatch",
                    "asset_extra_meta.{block} does not match asset_type {asset_type}: that type "
                    "takes {allowed}",
                    {
                        "block": blocks[0],
                        "asset_type": self.asset_type,
                        "allowed": allowed,
                        "at": ("asset_extra_meta", blocks[0]),
                    },
                )
        return self


_CJK = re.compile(
    "[\u2e80-\u2fdf\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
)
_ASSET_ID_PATTERN = r"^[^/\\\s\x00-\x1f\x7f-\x9f]+$"
_APP_USER_ID_PATTERN = r"^[\x21-\x7e]+$"
_LABEL_KEY_PATTERN = r"^[A-Za-z0-9._/-]+$"
_LABEL_VALUE_PATTERN = r"^[A-Za-z0-9._-]*$"


def _check_asset_id(value: str) -> str:
    """asset_id goes into the API path, so nothing path-like may pass."""
    if not re.match(_ASSET_ID_PATTERN, value):
        raise PydanticCustomError(
            "asset_id",
            "asset_id must not contain '/', '\\', whitespace or control characters: it is used "
            "in the API path",
        )
    if ".." in value:
        raise PydanticCustomError(
            "asset_id", "asset_id must not contain '..': it is used in the API path"
        )
    return value


def _check_app_user_id(value: str) -> str:
    """app_user_id is sent as an HTTP header, and the API forbids Chinese characters in it."""
    if _CJK.search(value):
        raise PydanticCustomError(
            "app_user_id", "app_user_id must not contain Chinese characters (API rule)"
        )
    if not re.match(_APP_USER_ID_PATTERN, value):
        raise PydanticCustomError(
            "app_user_id",
            "app_user_id must be printable ASCII without spaces: it is sent as the "
            "X-App-UserId header",
        )
    return value


def _check_ignore_path(value: str) -> str:
    """A ``metadata.ignore`` entry names a field of the spec (docs/ownership.md)."""
    from reconciler.api.rules import RuleError, parse_path

    try:
        parse_path(value)
    except RuleError as exc:
        message = str(exc).replace("{", "(").replace("}", ")")
        raise PydanticCustomError("ignore_path", message) from None
    return value


IgnorePathText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256),
    AfterValidator(_check_ignore_path),
    Field(json_schema_extra={"pattern": r"^spec\.[A-Za-z0-9_.]+(\[[^\[\]]+\])?$"}),
]


def _check_label_key(value: str) -> str:
    if not re.match(_LABEL_KEY_PATTERN, value):
        raise PydanticCustomError(
            "label_key", "label keys may contain only letters, digits, '.', '_', '/' and '-'"
        )
    return value


def _check_label_value(value: str) -> str:
    if not re.match(_LABEL_VALUE_PATTERN, value):
        raise PydanticCustomError(
            "label_value", "label values may contain only letters, digits, '.', '_' and '-'"
        )
    return value


AssetId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128),
    AfterValidator(_check_asset_id),
    Field(
        description="ID of the live asset this manifest manages (1-128 characters, no '/', "
        "'\\', whitespace, control characters or '..').",
        json_schema_extra={"pattern": _ASSET_ID_PATTERN, "not": {"pattern": "\\.\\."}},
    ),
]
AppUserId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256),
    AfterValidator(_check_app_user_id),
    Field(
        description="Third-party user ID, sent as the X-App-UserId header: printable ASCII "
        "without spaces (the API forbids Chinese characters).",
        json_schema_extra={"pattern": _APP_USER_ID_PATTERN},
    ),
]
LabelKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63),
    AfterValidator(_check_label_key),
    Field(json_schema_extra={"pattern": _LABEL_KEY_PATTERN}),
]
LabelValue = Annotated[
    str,
    StringConstraints(max_length=63),
    AfterValidator(_check_label_value),
    Field(json_schema_extra={"pattern": _LABEL_VALUE_PATTERN}),
]


class Metadata(BaseModel):
    """Identity and local bookkeeping of a manifest; nothing here is sent as an asset field."""

    model_config = ConfigDict(extra="forbid", strict=True)

    asset_id: AssetId
    target: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=128),
            Field(description="A target from reconciler.yaml (optional)."),
        ]
        | None
    ) = None
    app_user_id: AppUserId | None = None
    labels: Annotated[
        dict[LabelKey, LabelValue],
        Field(description="Local labels for --selector k=v; never sent to the service."),
    ] = Field(default_factory=dict)
    ignore: Annotated[
        list[IgnorePathText],
        Field(
            description="Fields someone else owns (spec.asset_order, spec.tags[campaign-*]): "
            "not diffed, not sent, not drift (docs/ownership.md)."
        ),
    ] = Field(default_factory=list)


class Manifest(BaseModel):
    """One ``DigitalAsset`` document."""

    model_config = ConfigDict(extra="forbid", strict=True)

    apiVersion: Literal["reconciler.metastudio/v1"]
    kind: Literal["DigitalAsset"]
    metadata: Metadata
    spec: Annotated[
        AssetSpec,
        Field(description="Desired fields of the asset; a field left out is not managed."),
    ]


class _ManifestSchemaGenerator(GenerateJsonSchema):
    """JSON Schema of the manifest as users may write it: ``null`` is not allowed (except as a
    system property's value, added by :func:`manifest_json_schema`)."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if schema.get("default") is None:
            return inner
        return super().default_schema(schema)


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a manifest document, for editors and CI."""
    body = Manifest.model_json_schema(schema_generator=_ManifestSchemaGenerator)
    body.pop("title", None)
    # No "$id": the schema has no published home yet, and an "$id" must be a real URL.
    # The one null users may write: ``system_properties: {KEY: null}`` deletes KEY.
    properties = body["$defs"]["AssetSpec"]["properties"]["system_properties"]
    properties["additionalProperties"] = {
        "anyOf": [properties["additionalProperties"], {"type": "null"}]
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **describe(body),
        "title": "reconciler DigitalAsset manifest",
        "description": "A MetaStudio digital asset declared for reconciler "
        "(docs/manifests.md). Fields left out of spec are not managed.",
    }


def manifest_json_schema_text() -> str:
    """The schema as ``reconciler schema`` prints it and ``import`` writes it."""
    return json.dumps(manifest_json_schema(), indent=2) + "\n"
