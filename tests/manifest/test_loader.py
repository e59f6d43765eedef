"""The loader: discovery, documents, positions, every problem of a run, hostile input."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from reconciler.manifest import ManifestError, load_manifests, loader, parallel
from reconciler.yaml_safe import MAX_DEPTH, MAX_FILE_BYTES

DATA = Path(__file__).parents[1] / "data" / "manifests"
HEAD = "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def manifest(asset_id: str, spec: str = "spec: {}\n") -> str:
    return f"{HEAD}metadata:\n  asset_id: {asset_id}\n{spec}"


def problems_of(*paths: Path | str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_manifests(list(paths))
    return [str(problem) for problem in info.value.problems]


def test_valid_directory_is_searched_recursively_skipping_hidden_and_other_files() -> None:
    loaded = load_manifests([DATA / "valid"])
    assert [m.asset_id for m in loaded] == [
        "22222222-0000-4000-8000-000000000001",
        "22222222-0000-4000-8000-000000000002",
        "22222222-0000-4000-8000-000000000003",
    ]
    first = loaded[0]
    assert first.manifest.metadata.target == "prod"
    assert first.manifest.metadata.app_user_id == "partner-42"
    assert (first.line, first.column) == (2, 1)
    assert loaded[1].line == 14  # the document after the empty one


def test_desired_holds_only_the_fields_written() -> None:
    loaded = load_manifests([DATA / "valid" / "multi.yaml"])
    assert loaded[0].desired == {"asset_name": "First", "tags": [], "system_properties": {}}
    assert loaded[1].desired == {
        "asset_description": "",
        "review_config": {"no_need_review": True},
        "shared_config": {"shared_type": "SHARED", "allowed_project_ids": ["p1", "p2"]},
    }


def test_position_of_a_spec_field(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", manifest("a", "spec:\n  tags:\n    - X\n    - Y\n"))
    (loaded,) = load_manifests([path])
    assert loaded.position(("tags",)) == (6, 3)
    assert loaded.position(("tags", 1)) == (8, 7)
    assert loaded.position(("asset_name",)) is None
    assert loaded.source == f"{path}:1:1"


def test_yaml_12_scalars_yes_stays_a_string_and_times_stay_strings(tmp_path: Path) -> None:
    spec = (
        "spec:\n  system_properties: {BACKGROUND_IMG: Yes}\n"
        "  auto_operation_config:\n    - operation: BLOCK\n"
        "      operation_time: 2026-01-10T00:00:00Z\n"
    )
    (loaded,) = load_manifests([write(tmp_path, "a.yaml", manifest("a", spec))])
    assert loaded.desired["system_properties"] == {"BACKGROUND_IMG": "Yes"}
    assert loaded.desired["auto_operation_config"][0]["operation_time"] == "2026-01-10T00:00:00Z"


def test_every_problem_of_a_run_is_reported_with_place_path_and_allowed_values() -> None:
    problems = problems_of(DATA / "broken")
    text = "\n".join(problems)
    broken = DATA / "broken"
    assert f"{broken}/bad_enum.yaml:7:3: spec.asset_state: Input should be 'ACTIVED' or " in text
    assert "(got 'BLOCK')" in text
    assert (
        f"{broken}/too_many_tags.yaml:6:3: spec.tags: List should have at most 50 items (got 51)"
        in text
    )
    assert (
        f"{broken}/read_only.yaml:8:5: spec.asset_extra_meta.image_meta: image_meta is read-only"
        in text
    )
    assert (
        f"{broken}/typo.yaml:6:3: spec.asset_nam: unknown field 'asset_nam'; "
        "did you mean 'asset_name'?" in text
    )
    assert f"{broken}/duplicate_key.yaml:7:3: spec.asset_name: duplicate key 'asset_name'" in text
    assert f"{broken}/tabs.yaml:6:1: tab character in indentation" in text
    assert f"{broken}/junk.yaml: binary file" in text
    assert (
        f"{broken}/dup_id_b.yaml:4:3: metadata.asset_id: asset_id "
        f"'11111111-0000-4000-8000-000000000006' is declared twice: here and at "
        f"{broken}/dup_id_a.yaml:4:3"
    ) in text
    assert len(problems) == 8


def test_same_asset_id_twice_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", manifest("x") + "---\n" + manifest("x"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:10:3: metadata.asset_id:")
    assert f"declared twice: here and at {path}:4:3" in problem


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("spec:\n  tags:\n", "spec.tags: null is not allowed"),
        ("spec:\n  asset_state: ACTIVE\n", "(got 'ACTIVE')"),
        ("spec:\n  asset_order: 40000\n", "less than or equal to 32767 (got 40000)"),
        (
            "spec:\n  tags: [a, 7]\n",
            "spec.tags[1]: Input should be a valid string (got 7; quote it",
        ),
        ("spec:\n  asset_name: " + "n" * 257 + "\n", "at most 256 characters (got 257)"),
        ("spec:\n  system_properties: {NOPE: x}\n", "spec.system_properties.NOPE: invalid key"),
        (
            "spec:\n  asset_extra_meta:\n    ppt_meta: {ppt_analysis_status: SUCCEEDED}\n",
            "ppt_analysis_status is read-only",
        ),
        (
            "spec:\n  asset_extra_meta: {voice_model_meta: {}, ppt_meta: {}}\n",
            "spec.asset_extra_meta: asset_extra_meta has 2 blocks",
        ),
        (
            "spec:\n  asset_type: PPT\n  asset_extra_meta: {voice_model_meta: {}}\n",
            "spec.asset_extra_meta.voice_model_meta: asset_extra_meta.voice_model_meta does not "
            "match asset_type PPT: that type takes only ppt_meta",
        ),
        (
            "spec:\n  asset_type: VIDEO\n  asset_extra_meta: {ppt_meta: {}}\n",
            "no settable block (video_meta is read-only)",
        ),
        ("spec:\n  colour: red\n", "unknown field 'colour'; allowed: asset_name,"),
        ("", "spec: required field is missing"),
    ],
)
def test_spec_problems(tmp_path: Path, spec: str, expected: str) -> None:
    (problem,) = problems_of(write(tmp_path, "a.yaml", manifest("a", spec)))
    assert expected in problem


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("asset_id: ../x", "must not contain '/'"),
        ("asset_id: a..b", "must not contain '..'"),
        ("asset_id: 'a b'", "whitespace"),
        ("asset_id: ''", "at least 1 character"),
        ("asset_id: " + "a" * 129, "at most 128 characters"),
        ("asset_id: a\n  app_user_id: 用户", "must not contain Chinese characters"),
        ("asset_id: a\n  labels: {team: 2}", "metadata.labels.team"),
        ("target: prod", "metadata.asset_id: required field is missing"),
    ],
)
def test_metadata_problems(tmp_path: Path, metadata: str, expected: str) -> None:
    text = f"{HEAD}metadata:\n  {metadata}\nspec: {{}}\n"
    (problem,) = problems_of(write(tmp_path, "a.yaml", text))
    assert expected in problem


def test_document_that_is_not_a_manifest(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "a.yaml", "- just\n- a list\n"))
    assert (
        problem == f"{tmp_path}/a.yaml:1:1: a manifest document must be a mapping with "
        "apiVersion, kind, metadata and spec (got a list)"
    )
    (problem,) = problems_of(write(tmp_path, "b.yaml", manifest("a").replace("v1", "v2")))
    assert (
        "apiVersion: Input should be 'reconciler.metastudio/v1' (got 'reconciler.metastudio/v2')"
        in problem
    )


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    problems = problems_of(tmp_path / "nope", tmp_path / "empty")
    assert problems == [
        f"{tmp_path}/nope: no such file or folder",
        f"{tmp_path}/empty: a folder with no .yaml or .yml files in it",
    ]


# --- hostile input ----------------------------------------------------------------------------


def test_alias_bomb_is_rejected_without_expanding(tmp_path: Path) -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    problems = problems_of(path)  # 9**10 strings if expanded: this returns only if it is not
    assert "aliases (*a0) are not allowed in a manifest" in problems[0]
    assert problems[-1].endswith("more than 50 problems; stopped")


def test_oversized_file_is_rejected_without_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    (problem,) = problems_of(path)
    assert f"a manifest may be at most {MAX_FILE_BYTES} bytes" in problem


def test_deep_nesting_is_bounded(tmp_path: Path) -> None:
    depth = 200_000
    path = write(tmp_path, "deep.yaml", "[" * depth + "]" * depth)
    (problem,) = problems_of(path)
    assert f"nesting deeper than {MAX_DEPTH} levels" in problem


def test_non_utf8_is_rejected_with_position(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(manifest("a", "spec:\n  asset_name: caf\xe9\n").encode("latin-1"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:6:18: not valid UTF-8 (byte 0xe9)")


def test_unsupported_tags_and_non_finite_numbers(tmp_path: Path) -> None:
    spec = "spec:\n  asset_name: !!binary aGk=\n  asset_order: .inf\n"
    problems = problems_of(write(tmp_path, "a.yaml", manifest("a", spec)))
    assert "YAML tag !!binary is not supported" in problems[0]
    assert ".inf is not a finite number" in problems[1]


def test_syntax_error_in_one_file_does_not_hide_others(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "a: [1\n")
    write(tmp_path, "b.yaml", manifest("b", "spec: {asset_nmae: x}\n"))
    problems = problems_of(tmp_path)
    assert problems[0].startswith(f"{tmp_path}/a.yaml:2:1: YAML syntax error")
    assert "did you mean 'asset_name'?" in problems[1]


def test_parallel_load_matches_a_serial_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many files go through a worker process; results and every problem stay the same."""
    for i in range(40):
        spec = "spec:\n  asset_name: n\n" if i % 7 else "spec:\n  asset_order: many\n"
        write(tmp_path, f"m{i:02}.yaml", manifest(f"a{i % 37}", spec))
    write(tmp_path, "m05.yaml", "apiVersion: [unclosed\n")

    def outcome() -> tuple[list[str], list[tuple[str, str, int]]]:
        try:
            loaded = load_manifests([tmp_path])
        except ManifestError as exc:
            return [str(p) for p in exc.problems], []
        return [], [(m.asset_id, m.file.name, m.line) for m in loaded]

    monkeypatch.setattr(parallel, "PARALLEL_MIN_FILES", 10**9)
    serial = outcome()
    assert any("declared twice" in p for p in serial[0])  # a0..a2 twice, across chunks
    assert any("m05.yaml:2:1: YAML syntax error" in p for p in serial[0])
    assert any("asset_order" in p for p in serial[0])

    monkeypatch.setattr(parallel, "PARALLEL_MIN_FILES", 10)
    monkeypatch.setattr(parallel, "CHUNK_FILES", 3)
    monkeypatch.setattr(parallel, "workers", lambda: 1)
    parent, parse_file, in_parent = os.getpid(), loader._parse_file, []

    def slow_here(path: Path) -> loader.ParsedFile:
        if os.getpid() == parent:  # the worker (a fork) gets the same function, fast
            in_parent.append(path)
            time.sleep(0.01)
        return parse_file(path)

    monkeypatch.setattr(loader, "_parse_file", slow_here)
    assert outcome() == serial
    assert 0 < len(in_parent) < 40  # both processes parsed a share


@pytest.mark.parametrize(
    ("encoding", "flavour"),
    [
        ("utf-16", "UTF-16 (little-endian)"),
        ("utf-16-be", "UTF-16 (big-endian)"),
        ("utf-32", "UTF-32 (little-endian)"),
        ("utf-32-be", "UTF-32 (big-endian)"),
    ],
)
def test_utf16_and_utf32_files_say_so(tmp_path: Path, encoding: str, flavour: str) -> None:
    path = tmp_path / "wide.yaml"
    text = "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\nspec: {asset_name: 中文}\n"
    path.write_bytes(text.encode(encoding))
    with pytest.raises(ManifestError) as info:
        load_manifests([path])
    message = str(info.value)
    assert f"the file is {flavour} encoded; a manifest must be UTF-8" in message
    assert "binary" not in message


def test_a_folder_linked_twice_and_a_link_loop_are_walked_once(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "a.yaml").write_text(
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\nmetadata: {asset_id: l-1}\n"
        "spec: {asset_name: Linked}\n"
    )
    root = tmp_path / "manifests"
    root.mkdir()
    (root / "one").symlink_to(shared, target_is_directory=True)
    (root / "two").symlink_to(shared, target_is_directory=True)
    (shared / "up").symlink_to(root, target_is_directory=True)
    loaded = load_manifests([root])
    assert [m.asset_id for m in loaded] == ["l-1"]
