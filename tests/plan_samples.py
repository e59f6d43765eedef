"""Hand-built plans shared by the renderer and plan-file tests (no engine needed)."""

from __future__ import annotations

from reconciler.engine.plan import Action, AssetPlan, ChangeKind, FieldChange, Plan

SARA = "93769b5a-c8c6-4692-9c95-53933a1f0c93"
VOICE = "1f0e4a4c-3b57-4d0e-9f49-8d4cbb2ab0a1"
GONE = "0d7a3a4e-5a5e-4a8f-bb1e-4f1c2d3e4f50"
BUSY = "6b1c9d2e-7f80-4a1b-9c2d-3e4f5a6b7c8d"


def sample_plan() -> Plan:
    """One of each row kind: an update with every change kind, an error, a blocked asset."""
    sara = AssetPlan(
        asset_id=SARA,
        action=Action.UPDATE,
        name="Sara Model",
        asset_type="HUMAN_MODEL_2D",
        source="manifests/sara.yaml:1:1",
        changes=[
            FieldChange(("asset_name",), ChangeKind.UPDATE, before="Sara", after="Sara Model"),
            FieldChange(("asset_description",), ChangeKind.ADD, after="Virtual employee"),
            FieldChange(("asset_order",), ChangeKind.REMOVE, before=3),
            FieldChange(
                ("tags",),
                ChangeKind.SET,
                before=["FEMALE", "OLD", "SITTING"],
                after=["NEWS", "FEMALE", "SITTING"],
                added=("NEWS",),
                removed=("OLD",),
            ),
            FieldChange(
                ("asset_extra_meta", "human_model_2d_meta"),
                ChangeKind.UPDATE,
                before={"support_live": False, "model_resolution": "1080P", "is_flexus": False},
                after={"support_live": True, "model_resolution": "4K", "is_flexus": False},
                children=(
                    FieldChange(
                        ("asset_extra_meta", "human_model_2d_meta", "support_live"),
                        ChangeKind.UPDATE,
                        before=False,
                        after=True,
                    ),
                    FieldChange(
                        ("asset_extra_meta", "human_model_2d_meta", "model_resolution"),
                        ChangeKind.UPDATE,
                        before="1080P",
                        after="4K",
                    ),
                ),
            ),
            FieldChange(
                ("system_properties",),
                ChangeKind.UPDATE,
                before={"BACKGROUND_IMG": "Yes", "MATERIAL_IMG": "Yes"},
                after={"BACKGROUND_IMG": "Yes", "BACKGROUND_SCENE": "Horizontal"},
                children=(
                    FieldChange(
                        ("system_properties", "BACKGROUND_SCENE"),
                        ChangeKind.ADD,
                        after="Horizontal",
                    ),
                    FieldChange(
                        ("system_properties", "MATERIAL_IMG"), ChangeKind.REMOVE, before="Yes"
                    ),
                ),
            ),
            FieldChange(
                ("shared_config",), ChangeKind.WRITE_ONLY, after={"shared_type": "PRIVATE"}
            ),
        ],
        body={
            "asset_name": "Sara Model",
            "asset_description": "Virtual employee",
            "tags": ["NEWS", "FEMALE", "SITTING"],
            "asset_extra_meta": {
                "human_model_2d_meta": {
                    "support_live": True,
                    "model_resolution": "4K",
                    "is_flexus": False,
                }
            },
            "system_properties": [
                {"action": "ADD", "key": "BACKGROUND_SCENE", "value": "Horizontal"},
                {"action": "DELETE", "key": "MATERIAL_IMG", "value": "Yes"},
            ],
            "shared_config": {"shared_type": "PRIVATE"},
        },
        unchanged=2,
        write_only=["review_config"],
        write_only_applied_at="2025-01-09T10:00:00Z",
        live_state="ACTIVED",
        live_fingerprint="sha256:" + "a" * 64,
        write_only_fingerprint="sha256:" + "b" * 64,
    )
    voice = AssetPlan(
        asset_id=VOICE,
        action=Action.NOOP,
        name="Narrator",
        asset_type="VOICE_MODEL",
        unchanged=4,
        write_only=["review_config"],
        live_state="ACTIVED",
        live_fingerprint="sha256:" + "c" * 64,
    )
    gone = AssetPlan(
        asset_id=GONE,
        action=Action.ERROR,
        name="Old Promo",
        source="manifests/promo.yaml:12:1",
        errors=["asset not found in project p1"],
        error_code="MSS.10001001",
    )
    busy = AssetPlan(
        asset_id=BUSY,
        action=Action.BLOCKED,
        name="Uploading Clip",
        asset_type="VIDEO",
        errors=["state CREATING does not allow updates"],
        live_state="CREATING",
    )
    return Plan(
        assets=[sara, voice, gone, busy],
        target="prod",
        project_id="p1",
        endpoint="https://metastudio.cn-north-4.myhuaweicloud.com",
        created_at="2025-01-10T08:00:00Z",
        warnings=["4 of 12 managed assets would change (33%), above the 30% safety threshold."],
    )


def in_sync_plan() -> Plan:
    """Every asset matches live."""
    return Plan(
        assets=[
            AssetPlan(asset_id=SARA, action=Action.NOOP, name="Sara Model", unchanged=5),
            AssetPlan(asset_id=VOICE, action=Action.NOOP, name="Narrator", unchanged=4),
        ],
        target="prod",
        project_id="p1",
        endpoint="https://metastudio.cn-north-4.myhuaweicloud.com",
        created_at="2025-01-10T08:00:00Z",
    )
