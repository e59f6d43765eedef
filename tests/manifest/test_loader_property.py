"""Property: whatever bytes or documents arrive, the loader returns manifests or ManifestError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.manifest import ManifestError, load_manifests

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

KEYS = st.sampled_from(
    [
        "asset_name",
        "tags",
        "asset_extra_meta",
        "voice_model_meta",
        "image_meta",
        "asset_state",
        "system_properties",
        "BACKGROUND_IMG",
        "asset_order",
        "languages",
        "x",
        "",
        "*a",
        "<<",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["ACTIVED", "EN", "fr", "Yes", "1080P", "VOICE_MODEL"]),
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


def check(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    try:
        loaded = load_manifests([path])
    except ManifestError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert str(problem).startswith(str(path))
    else:
        for item in loaded:
            json.dumps(item.desired)  # desired is plain JSON data


@SETTINGS
@given(content=st.binary(max_size=300))
def test_random_bytes(tmp_path: Path, content: bytes) -> None:
    check(tmp_path / "m.yaml", content)


@SETTINGS
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_random_text(tmp_path: Path, text: str) -> None:
    check(tmp_path / "m.yaml", text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(spec=st.dictionaries(KEYS, VALUES, max_size=5), metadata=VALUES, flow=st.booleans())
def test_random_manifests(tmp_path: Path, spec: dict[str, Any], metadata: Any, flow: bool) -> None:
    doc = {
        "apiVersion": "reconciler.metastudio/v1",
        "kind": "DigitalAsset",
        "metadata": {"asset_id": "a", "labels": metadata},
        "spec": spec,
    }
    try:
        text = json.dumps(doc, indent=None if flow else 2, allow_nan=True)
    except ValueError:
        return
    check(tmp_path / "m.yaml", text.encode("utf-8", "surrogatepass"))
