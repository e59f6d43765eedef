"""The per-document comparison behind ``--changed-since``: by ``asset_id`` and content digest,
on a real git repository for the file-level part."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.manifest.gitrev import (
    DocumentKey,
    GitRevisionError,
    changed_documents,
    compare_documents,
    document_keys,
)
from reconciler.manifest.problems import ManifestError


def doc(asset_id: str, name: str = "Voice", target: str = "") -> str:
    where = f"  target: {target}\n" if target else ""
    return (
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\nmetadata:\n"
        f"  asset_id: {asset_id}\n{where}spec:\n  asset_name: {name}\n"
    )


def keys(*documents: str) -> list[DocumentKey]:
    return document_keys("---\n".join(documents), "f.yaml")


def test_one_edited_document_of_many_is_the_only_change() -> None:
    old = keys(*(doc(f"a{i}") for i in range(50)))
    new = keys(*(doc(f"a{i}", "Renamed" if i == 17 else "Voice") for i in range(50)))
    result = compare_documents(old, new)
    assert result.changed == {"a17"}
    assert result.removed == []


def test_comments_and_layout_change_nothing() -> None:
    old = keys(doc("a1"))
    new = document_keys(
        "# reviewed\n" + doc("a1").replace("asset_name: Voice", "asset_name: 'Voice'  # same"),
        "f.yaml",
    )
    assert compare_documents(old, new).changed == frozenset()


def test_a_changed_id_is_a_removal_and_an_addition() -> None:
    result = compare_documents(keys(doc("a1"), doc("a2")), keys(doc("a1"), doc("b2")))
    assert result.changed == {"b2"}
    assert [d.asset_id for d in result.removed] == ["a2"]


def test_a_document_moved_between_files_is_unchanged() -> None:
    old = document_keys(doc("a1"), "one.yaml") + document_keys(doc("a2"), "two.yaml")
    new = document_keys("---\n".join([doc("a1"), doc("a2")]), "one.yaml")
    assert compare_documents(old, new) == compare_documents(new, new)


def test_a_document_without_an_id_is_left_out() -> None:
    assert document_keys("apiVersion: x\nkind: y\n---\n" + doc("a1"), "f.yaml")[0].asset_id == "a1"
    assert document_keys(": : [", "f.yaml") == []


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = tmp_path / "repo"
    (root / "manifests" / "team").mkdir(parents=True)
    (root / "manifests" / "all.yaml").write_text("---\n".join(doc(f"a{i}") for i in range(5)))
    (root / "manifests" / "team" / "b.yaml").write_text(doc("b1", target="prod"))
    (root / "manifests" / "README.md").write_text("not a manifest\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "one")
    monkeypatch.chdir(root)
    return root


def test_changed_documents_of_edited_new_and_deleted_files(repo: Path) -> None:
    manifests = repo / "manifests"
    (manifests / "all.yaml").write_text(
        "---\n".join(doc(f"a{i}", "Edited" if i == 2 else "Voice") for i in range(4))
    )
    (manifests / "team" / "b.yaml").unlink()
    (manifests / "new.yml").write_text(doc("c1"))  # untracked
    (manifests / ".hidden.yaml").write_text(doc("h1"))  # skipped, as discovery skips it
    (manifests / "README.md").write_text("edited\n")
    changes = changed_documents(["manifests"], "HEAD")
    assert changes.changed == {"a2", "c1"}
    assert sorted((d.asset_id, d.file, d.target) for d in changes.removed) == [
        ("a4", "manifests/all.yaml", None),
        ("b1", "manifests/team/b.yaml", "prod"),
    ]
    assert changes.files == ["manifests/all.yaml", "manifests/new.yml"]
    assert sorted(d.asset_id for d in changes.documents) == ["a0", "a1", "a2", "a3", "c1"]


def test_the_scan_counts_every_document_and_its_target(repo: Path) -> None:
    changes = changed_documents(["manifests"], "HEAD")
    assert changes.files == [] and changes.changed == frozenset() and changes.removed == []
    assert changes.managed(lambda target: target or "default") == {"default": 5, "prod": 1}


def test_duplicate_of_an_unchanged_file_is_refused(repo: Path) -> None:
    (repo / "manifests" / "dup.yaml").write_text(doc("a3"))
    changes = changed_documents(["manifests"], "HEAD")
    assert changes.changed == {"a3"}
    with pytest.raises(ManifestError) as raised:
        changes.settle()
    [problem] = raised.value.problems
    assert problem.file == "manifests/dup.yaml"
    assert "'a3' is declared twice" in problem.message
    assert "manifests/all.yaml:" in problem.message


def test_unknown_revision_and_no_repository(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(GitRevisionError, match="--changed-since nope: no such revision"):
        changed_documents(["manifests"], "nope")
    with pytest.raises(GitRevisionError, match="--changed-since --all: no such revision"):
        changed_documents(["manifests"], "--all")  # not taken as an option
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)
    with pytest.raises(GitRevisionError, match="not in a git repository"):
        changed_documents(["."], "HEAD")
