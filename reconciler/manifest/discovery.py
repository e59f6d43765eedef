"""Which files under a folder are manifests: one rule for the loader and for ``import``.

``.yaml``/``.yml`` files, searched recursively in sorted order, skipping hidden files and
folders (``.git``, editor backups, ``.github``): a file ``plan`` and ``apply`` never read must
not be rewritten by ``import`` either.  Symlinked folders are followed like symlinked files; a
folder reached again (a link to an ancestor, or two links to one folder) is walked once, so a
link loop ends.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator
from pathlib import Path

from reconciler.constants import MANIFEST_SUFFIXES

# (device, inode): the file itself, whatever path reached it; a dangling link: where it points.
FileKey = tuple[int, int] | str


def manifest_files(root: Path) -> Iterator[Path]:
    """Every manifest file under the directory ``root``, in a stable (sorted) order."""
    return (Path(name) for name, _ in manifest_entries(root))


def manifest_entries(root: Path) -> Iterator[tuple[str, FileKey]]:
    """:func:`manifest_files` as path strings, with each file's identity, known from the
    directory listing for all but symbolic links (so a walk over 10,000 files does not stat each
    of them again).  Strings, because making a ``Path`` costs more than finding the file (0.3 s
    for 100,000), and a streamed load hands names to its workers anyway.

    Files of a folder come first, sorted, then its subfolders, sorted, each walked the same way.
    A folder that cannot be listed is skipped, as ``os.walk`` skips it.
    """
    walked: set[tuple[int, int]] = set()
    pending = [str(root)]
    while pending:
        directory = pending.pop()
        try:
            info = os.stat(directory)
            entries = list(os.scandir(directory))
        except OSError:  # removed while walking, or not readable
            continue
        if (info.st_dev, info.st_ino) in walked:
            continue
        walked.add((info.st_dev, info.st_ino))
        folders: list[str] = []
        files: list[os.DirEntry[str]] = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                is_folder = entry.is_dir()  # a link to a folder counts as one
            except OSError:
                is_folder = False
            if is_folder:
                folders.append(name)
            elif name.endswith(MANIFEST_SUFFIXES):
                files.append(entry)
        files.sort(key=_NAME)
        device = info.st_dev
        for entry in files:  # entry.path is the folder joined with the name, made by scandir
            if entry.is_symlink():
                yield entry.path, _link_key(entry)
            else:
                yield entry.path, (device, entry.inode())
        # Depth first, in sorted order: the last pushed is walked next.
        pending.extend(os.path.join(directory, name) for name in sorted(folders, reverse=True))


_NAME = operator.attrgetter("name")


def _link_key(entry: os.DirEntry[str]) -> FileKey:
    try:
        target = os.stat(entry.path)
    except OSError:  # a dangling link: reported when it is read
        return os.path.realpath(entry.path)
    return target.st_dev, target.st_ino
