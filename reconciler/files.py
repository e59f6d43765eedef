"""Writing a file so that a reader never sees half of it, and its permissions stay the user's.

Every file the tool writes for a user (rewritten manifests, saved plans, drift reports) goes
through :func:`write_atomic`: the text goes to a temporary file in the same directory, which then
replaces the target in one ``rename``.  A temporary file is created private (0600), so the mode
is set explicitly before the rename: an existing file keeps its own mode, a new one gets the
mode a plain ``open()`` would give it (0666 less the umask).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) in one step; raises ``OSError`` on failure."""
    write_atomic_chunks(path, (text,))


def write_atomic_chunks(path: Path, chunks: Iterable[str]) -> None:
    """Replace ``path`` with the concatenated ``chunks`` (UTF-8) in one step, writing each as
    it comes; an exception from ``chunks`` leaves ``path`` as it was."""
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
