"""The one atomic write: a rewritten file keeps its mode, a new one gets the usual one."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.files import write_atomic


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_rewriting_keeps_the_files_own_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text("old\n")
    path.chmod(0o664)
    write_atomic(path, "new\n")
    assert path.read_text() == "new\n"
    assert mode(path) == 0o664


def test_a_private_file_stays_private(tmp_path: Path) -> None:
    path = tmp_path / "private.yaml"
    path.write_text("old\n")
    path.chmod(0o600)
    write_atomic(path, "new\n")
    assert mode(path) == 0o600


def test_a_new_file_gets_the_mode_open_would_give_it(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "nested" / "new.json"
    write_atomic(path, "{}\n")
    assert mode(path) == 0o644


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a.txt", "x")
    write_atomic(tmp_path / "a.txt", "y")
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
