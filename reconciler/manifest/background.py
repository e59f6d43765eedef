"""Load manifests in worker processes while the event loop reads live state.

A plan's reads do not depend on the manifests (the first pages of the project can be read at
once), so ``plan`` starts them while the files are still being parsed and validated.  The load
is CPU work and the reads are paced I/O that must leave on time: so the whole load (parsing
*and* validation) runs in forked worker processes on the other cores, which return plain data
(:class:`~reconciler.manifest.loader.Declared`, a seventh of the cost of a validated model to
receive).  The event loop only awaits each chunk's result in file order; it never runs YAML or
validation code that would delay a paced request.  (A thread would not do: it holds the
interpreter lock while it works, and every request then waits for it.)  Few files are loaded
in this process, a chunk at a time, between the loop's other work.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from reconciler.manifest import parallel
from reconciler.manifest.loader import (
    Declared,
    DeclaredFile,
    DuplicateIds,
    declared_chunk,
    declared_file,
    discover_names,
)
from reconciler.manifest.problems import ManifestError, Problem

# Chunks handed to the workers ahead of the one this process awaits, per worker: enough that a
# worker never waits for this process, which may be diffing a page when a chunk finishes.
CHUNKS_AHEAD_PER_WORKER = 8


@dataclass
class DeclaredChunk:
    """The valid manifests of one chunk of files, in file order, and the problems found in it
    (a duplicate ``asset_id`` included; the first chunk also carries discovery's problems)."""

    manifests: list[Declared] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class StreamedLoad:
    """One load of the manifests under ``paths``, awaited chunk by chunk.

    Discovery runs when the block is entered, so :attr:`files` is known before any file is
    parsed.  Iterating gives each :class:`DeclaredChunk` in file order; afterwards
    :attr:`problems` and :meth:`raise_problems` are those of
    :func:`~reconciler.manifest.loader.load_manifests` for the same files.  Leaving the block
    early cancels the chunks no worker has started.
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self._paths = list(paths)
        self._files: list[str] = []
        self._discovery: list[Problem] = []
        self._file_problems: list[Problem] = []
        self._duplicates: list[Problem] = []
        self._ids = DuplicateIds()
        self._pool: ProcessPoolExecutor | None = None

    async def __aenter__(self) -> Self:
        self._files, self._discovery = discover_names(self._paths)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    @property
    def files(self) -> int:
        """How many manifest files discovery found."""
        return len(self._files)

    @property
    def problems(self) -> list[Problem]:
        """Every problem so far, in the order of a serial load: discovery's, each file's in
        file order, then every duplicate ``asset_id``."""
        return [*self._discovery, *self._file_problems, *self._duplicates]

    def raise_problems(self) -> None:
        problems = self.problems
        if problems:
            raise ManifestError(problems)

    def _book(self, problems: list[Problem], manifests: list[Declared]) -> list[Problem]:
        """One loaded file, in file order: its problems and those of duplicate ids."""
        found = list(problems)
        self._file_problems.extend(problems)
        for item in manifests:
            duplicate = self._ids.check(item)
            if duplicate is not None:
                self._duplicates.append(duplicate)
                found.append(duplicate)
        return found

    async def __aiter__(self) -> AsyncIterator[DeclaredChunk]:
        files = self._files
        size = parallel.CHUNK_FILES
        chunks = [files[i : i + size] for i in range(0, len(files), size)]
        first = DeclaredChunk(problems=list(self._discovery))
        if not chunks:
            yield first
            return
        # This process mostly waits for paced answers: the workers get every core.
        workers = parallel.workers() + 1 if parallel.forks_workers(len(files)) else 0
        futures: dict[int, Future[list[DeclaredFile]]] = {}
        pool: ProcessPoolExecutor | None = None
        if workers:
            # Forked now, from this single thread.
            pool = self._pool = parallel.worker_pool(workers)
        ahead = workers * CHUNKS_AHEAD_PER_WORKER

        def submit(index: int) -> None:
            # A window of chunks ahead of the one awaited, not all of them at once: handing
            # over 1,000 chunks took 0.25 s of this process before its first request.
            nonlocal pool
            if pool is not None and index < len(chunks):
                try:
                    futures[index] = pool.submit(declared_chunk, chunks[index])
                except BrokenProcessPool:  # a worker was killed: this process loads the rest
                    pool = None

        for index in range(ahead):
            submit(index)
        for index, chunk in enumerate(chunks):
            submit(index + ahead)  # chunk `index` itself went `ahead` chunks earlier
            future = futures.pop(index, None)
            loaded: list[DeclaredFile] | None = None
            if future is not None:
                try:
                    loaded = await asyncio.wrap_future(future)
                except BrokenProcessPool:  # a worker was killed: this process takes over
                    loaded = None
            if loaded is None:
                loaded = [declared_file(Path(name)) for name in chunk]
                await asyncio.sleep(0)  # let paced requests leave between chunks
            out = first if index == 0 else DeclaredChunk()
            for file_problems, manifests in loaded:
                out.problems.extend(self._book(file_problems, manifests))
                out.manifests.extend(manifests)
            yield out
