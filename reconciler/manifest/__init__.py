"""Manifests: the ``DigitalAsset`` schema and the loader that validates files of them."""

from reconciler.manifest.loader import (
    LoadedManifest,
    ManifestError,
    Problem,
    load_manifests,
)
from reconciler.manifest.schema import Manifest, manifest_json_schema

__all__ = [
    "LoadedManifest",
    "Manifest",
    "ManifestError",
    "Problem",
    "load_manifests",
    "manifest_json_schema",
]
