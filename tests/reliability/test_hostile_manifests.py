"""Hostile manifests: whatever is in the repository, the loader answers with a clear error in
bounded memory, and a run with invalid input sends nothing to the service."""

from __future__ import annotations

import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import process

from .harness import Measured, Project, run_measured

pytestmark = pytest.mark.reliability

VALID = """\
apiVersion: reconciler.metastudio/v1
kind: DigitalAsset
metadata:
  asset_id: {asset_id}
spec:
  asset_name: Hostile Test
  tags: [NEWS]
"""
MiB = 1024 * 1024


def loader() -> tuple[Callable[..., Any], type[Exception]]:
    from reconciler.manifest.loader import ManifestError, load_manifests

    return load_manifests, ManifestError


@contextmanager
def peak_memory(limit_mb: float) -> Iterator[None]:
    """Fail if Python allocations inside the block peak above ``limit_mb``."""
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit_mb * MiB, f"peak {peak / MiB:.1f} MiB > {limit_mb} MiB"


def rejected(path: Path, limit_mb: float = 64) -> str:
    """The loader's error text for ``path``; it must be a ManifestError within the memory bound."""
    load_manifests, manifest_error = loader()
    with peak_memory(limit_mb), pytest.raises(manifest_error) as info:
        load_manifests([path])
    text = str(info.value)
    assert text.strip(), "an empty error message helps nobody"
    assert "Traceback" not in text
    return text


def billion_laughs(indent: str, levels: int = 9, width: int = 9) -> str:
    """Anchors whose full expansion is ``width ** levels`` strings (about 387 million here)."""
    lines = [f"{indent}a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"{indent}a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_rejected_in_bounded_memory(tmp_path: Path) -> None:
    """Error messages and validation must not expand the shared structure."""
    head = "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\nmetadata: {asset_id: b1}\n"
    doc = head + "anchors:\n" + billion_laughs("  ") + "spec:\n  tags: *a9\n  asset_name: *a9\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(doc)
    assert "bomb.yaml" in rejected(path)


def test_alias_bomb_inside_a_manifest_is_rejected(tmp_path: Path) -> None:
    doc = VALID.format(asset_id="bomb-2") + "  asset_extra_meta:\n" + billion_laughs("    ")
    path = tmp_path / "bomb2.yaml"
    path.write_text(doc)
    assert rejected(path)


def test_a_50_mb_file_is_rejected_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as fh:
        fh.write(VALID.format(asset_id="huge-1"))
        fh.write("  asset_description: '")
        fh.write("x" * MiB)
        fh.truncate(50 * MiB)
    text = rejected(path, limit_mb=8)
    assert "huge.yaml" in text


@pytest.mark.parametrize(
    "body",
    ["[" * 50_000 + "]" * 50_000, "{a: " * 20_000 + "1" + "}" * 20_000],
    ids=["lists", "mappings"],
)
def test_deep_nesting_is_an_error_not_a_crash(tmp_path: Path, body: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(VALID.format(asset_id="deep-1") + f"  asset_extra_meta: {body}\n")
    assert rejected(path)


@pytest.mark.parametrize(
    "asset_id", ["../x", "..", "a/b", "/etc/passwd", "x/../../y", "with space", "", "a" * 300]
)
def test_path_like_or_malformed_asset_ids_are_errors(tmp_path: Path, asset_id: str) -> None:
    path = tmp_path / "ids.yaml"
    path.write_text(VALID.format(asset_id=yaml.safe_dump(asset_id).splitlines()[0]))
    text = rejected(path)
    assert "asset_id" in text


def test_binary_and_non_utf8_files_are_errors(tmp_path: Path) -> None:
    binary = tmp_path / "junk.yaml"
    binary.write_bytes(bytes(range(256)) * 8)
    assert "junk.yaml" in rejected(binary)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(
        VALID.format(asset_id="latin-1").replace("Hostile", "H\xf6stile").encode("latin-1")
    )
    assert "latin.yaml" in rejected(latin)


def _load_text(text: str) -> None:
    load_manifests, manifest_error = loader()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            result = load_manifests([path])
        except manifest_error as exc:
            assert str(exc).strip()
        else:
            # Whatever loaded is a whole, valid manifest of this file: re-validating its spec
            # gives the same data, and no null slipped through as a managed value.
            for item in result:
                assert item.file == path and item.line >= 1
                assert item.manifest.metadata.asset_id
                dumped = item.manifest.spec.model_dump(exclude_unset=True, mode="json")
                assert set(item.desired) <= set(dumped)
                assert None not in item.desired.values()


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@FUZZ
@given(st.text(max_size=400))
def test_fuzz_any_text_loads_or_is_a_manifest_error(text: str) -> None:
    _load_text(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
SPEC_KEYS = [
    "asset_name",
    "asset_description",
    "asset_state",
    "tags",
    "asset_order",
    "asset_extra_meta",
    "system_properties",
    "supported_service",
    "review_config",
    "shared_config",
    "auto_operation_config",
    "asset_type",
    "bogus",
]


@FUZZ
@given(
    st.dictionaries(st.sampled_from(SPEC_KEYS), json_values, max_size=5),
    st.sampled_from(["a1", "../x", "ok-id", 17, None]),
)
def test_fuzz_manifest_shaped_documents(spec: dict[str, Any], asset_id: Any) -> None:
    doc = {
        "apiVersion": "reconciler.metastudio/v1",
        "kind": "DigitalAsset",
        "metadata": {"asset_id": asset_id},
        "spec": spec,
    }
    _load_text(yaml.safe_dump(doc, allow_unicode=True))


def test_invalid_input_sends_nothing(project: Project) -> None:
    """One bad manifest among good ones: the run reports it and makes no request at all."""
    bad = project.root / "manifests" / "zz-bad.yaml"
    bad.write_text(VALID.format(asset_id="../escape"))
    with project.emulator():
        for args in (
            ["plan", "manifests"],
            ["apply", "manifests", "--auto-approve"],
            ["drift", "manifests"],
        ):
            result = project.cli(*args)
            assert result.returncode == 1, result.output
            result.assert_clean()
            assert "zz-bad.yaml" in result.stderr, result.stderr
    assert project.requests() == [], "a request was made although the manifests are invalid"


def validate_process(root: Path, *paths: str) -> Measured:
    argv = [sys.executable, "-m", "reconciler", "validate", *paths]
    result = run_measured(argv, env=process.credentials_env(), cwd=root, timeout=30)
    result.assert_clean()
    assert result.wall_s < 10
    return result


def test_symlinked_folders_are_followed_and_loops_end(tmp_path: Path) -> None:
    """A folder linked into manifests/ is read like a linked file; a link back to an ancestor
    does not loop, and nothing is read twice."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "one.yaml").write_text(VALID.format(asset_id="linked-1"))
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "own.yaml").write_text(VALID.format(asset_id="own-1"))
    (manifests / "team").symlink_to(shared, target_is_directory=True)
    (manifests / "team-again").symlink_to(shared, target_is_directory=True)
    (shared / "loop").symlink_to(tmp_path, target_is_directory=True)
    result = validate_process(tmp_path, "manifests")
    assert result.returncode == 0, result.output
    assert "2 manifests valid." in result.stdout
    (shared / "bad.yaml").write_text(VALID.format(asset_id="../linked"))
    result = validate_process(tmp_path, "manifests")
    assert result.returncode == 1, result.output
    assert "manifests/team/bad.yaml:4:" in result.stderr, result.stderr


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32-le"])
def test_utf16_and_utf32_files_are_named_as_such(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "wide.yaml"
    path.write_bytes(
        VALID.format(asset_id="wide-1").replace("Hostile", "H\u00f6stile").encode(encoding)
    )
    result = validate_process(tmp_path, "wide.yaml")
    assert result.returncode == 1, result.output
    flavour = "UTF-16" if "16" in encoding else "UTF-32"
    assert f"wide.yaml: the file is {flavour} (" in result.stderr, result.stderr
    assert "must be UTF-8" in result.stderr and "binary" not in result.stderr


def test_an_invalid_manifest_stops_the_reads_already_started(
    make_project: Callable[..., Project],
) -> None:
    """Reading live state starts while many manifests load; the first invalid one cancels it.

    At one list request per second the 21 pages of this project would take twenty seconds;
    the load finds the bad file long before, so only the first few pages are read, nothing
    is written, and the errors are reported as for a small repository.  ``apply`` plans the
    same way (its writes wait for a valid load, a shown plan and the confirmation), and
    ``validate`` never reads.
    """
    big = make_project(n=2000, drift_ratio=0.01)
    (big.root / "manifests" / "zz-bad.yaml").write_text(VALID.format(asset_id="../escape"))
    big.fail_fast(rate_limits="{list: 1, show: 1, update: 1}")
    with big.emulator(rate_limits="list=1,show=1,update=1"):
        result = big.cli("plan", "manifests")
        assert result.returncode == 1, result.output
        result.assert_clean()
        assert "zz-bad.yaml" in result.stderr, result.stderr
        reads = big.requests()
        assert reads, "reading did not start while the manifests were loading"
        assert len(reads) < 6, f"{len(reads)} requests after the manifests were known invalid"
        for args, most in (
            (["apply", "manifests", "--auto-approve"], 6),
            (["validate", "manifests"], 0),
        ):
            before = len(big.requests())
            result = big.cli(*args)
            assert result.returncode == 1, result.output
            assert "zz-bad.yaml" in result.output, result.output
            sent = len(big.requests()) - before
            assert sent <= most, f"{args[0]} sent {sent} requests"
    assert big.puts() == []
