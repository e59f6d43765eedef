"""Which files under a folder are manifests: one rule for the loader and for ``import``.

``.yaml``/``.yml`` files, searched recursively in sorted order, skipping hidden files and
folders (``.git``, editor backups, ``.github``): a file ``plan`` and ``apply`` never read must
not be rewritten by ``import`` either.  Symlinked folders are followed like symlinked files; a
folder reached again (a link to an ancestor, or two links to one folder) is walked once, so a
link loop ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from reconciler.constants import MANIFEST_SUFFIXES


def manifest_files(root: Path) -> Iterator[Path]:
    """Every manifest file under the directory ``root``, in a stable (sorted) order."""
    walked: set[tuple[int, int]] = set()
    for directory, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            info = os.stat(directory)
        except OSError:  # removed while walking
            continue
        if (info.st_dev, info.st_ino) in walked:
            dirnames[:] = []
            continue
        walked.add((info.st_dev, info.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.endswith(MANIFEST_SUFFIXES):
                yield Path(directory) / name
