"""Manifests: the ``DigitalAsset`` schema and the loader that validates files of them.

The schema's names are imported on first use: the loader imports the models only when it
validates, and a process that never does (a large plan's, whose workers validate) never loads
them.
"""

from typing import TYPE_CHECKING, Any

from reconciler.manifest.loader import (
    LoadedManifest,
    ManifestError,
    Problem,
    load_manifests,
)

if TYPE_CHECKING:
    from reconciler.manifest.schema import Manifest, manifest_json_schema

__all__ = [
    "LoadedManifest",
    "Manifest",
    "ManifestError",
    "Problem",
    "load_manifests",
    "manifest_json_schema",
]


def __getattr__(name: str) -> Any:
    if name in ("Manifest", "manifest_json_schema"):
        from reconciler.manifest import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
