"""Values that several layers share, named once."""

from __future__ import annotations

# Manifest files: what discovery picks up and what `apply` does not take for a saved plan.
MANIFEST_SUFFIXES = (".yaml", ".yml")

# Where commands look for manifests when no path is given.
DEFAULT_PATHS = ("manifests",)

# The service's answer for an asset it does not know (400 ``MSS.10001001``).
ASSET_NOT_FOUND = "MSS.10001001"

# Requests in flight at once: reads (plan, drift, import) and writes (apply).  The client's
# pacing (docs/configuration.md) still bounds the rate; these bound concurrency.
READ_PARALLELISM = 8
WRITE_PARALLELISM = 10

# One list page: the API's maximum ``limit``.
PAGE_SIZE = 100

# Ordered lists of objects and the key that tells their items apart (docs/field-semantics.md,
# "Ordered lists of objects"): an item's unwritten keys are filled only from the live item with
# the same value of this key, so the manifest may not give two items the same one.
LIST_ITEM_IDENTITY: dict[tuple[str, ...], str] = {
    ("asset_extra_meta", "ppt_meta", "pages"): "file_id",
    ("asset_extra_meta", "human_model_2d_meta", "action_tag_map"): "action_name_en",
    ("asset_extra_meta", "material_meta", "components"): "component_name",
}
