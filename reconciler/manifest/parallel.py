"""Parsing many manifest files on every available core, results in file order.

Reading and parsing is most of a plan's CPU before its first request, so with many files
(:data:`PARALLEL_MIN_FILES`) worker processes (forked, so they start at once) parse chunks of
files and return plain data, and this process finishes (validates) every file itself, in file
order, so problems, their order and duplicate detection are exactly those of a serial load.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from reconciler import interrupts

PARALLEL_MIN_FILES = 500  # below this, starting worker processes costs more than it saves
CHUNK_FILES = 100  # files per unit of work handed to a worker
WORKER_NICENESS = 3  # added to the workers' niceness: the parent's requests go first

P = TypeVar("P")
R = TypeVar("R")
_PARSE: Callable[[Path], Any] | None = None


def workers() -> int:
    """Worker processes to start: one per available core beyond this process's own."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity
        cores = os.cpu_count() or 1
    return cores - 1


def load_in_order(
    files: Sequence[Path], parse: Callable[[Path], P], finish: Callable[[Path, P], R]
) -> Iterator[R]:
    """``finish(path, parse(path))`` for each file, in order; parsed on several cores when there
    are many files (``parse`` must return plain data: it crosses processes)."""
    if not forks_workers(len(files)):
        return (finish(path, parse(path)) for path in files)
    global _PARSE
    _PARSE = parse  # the forked workers inherit it (a local function does not pickle)
    return iter(_load_in_parallel(files, workers(), parse, finish))


def forks_workers(files: int) -> bool:
    """Whether a load of ``files`` files is worth worker processes, and can fork them."""
    return (
        files >= PARALLEL_MIN_FILES
        and workers() > 0
        and "fork" in multiprocessing.get_all_start_methods()
    )


def worker_pool(count: int) -> ProcessPoolExecutor:
    """``count`` load workers, forked at the first submit, each set up by :func:`worker_init`."""
    return ProcessPoolExecutor(
        max_workers=count,
        mp_context=multiprocessing.get_context("fork"),
        initializer=worker_init,
        initargs=(os.getpid(),),
    )


def _parse_chunk(names: list[str]) -> list[Any]:
    """The work of one worker call (names, not Paths: they pickle at a fraction of the cost)."""
    parse = _PARSE
    assert parse is not None
    return [parse(Path(name)) for name in names]


def _load_in_parallel(
    files: Sequence[Path],
    workers: int,
    parse: Callable[[Path], P],
    finish_one: Callable[[Path, P], R],
) -> list[R]:
    """Chunks go to the workers from the front; this process works from both ends.

    It validates each chunk a worker has finished, in order, and while none is ready it takes
    the last chunk not yet handed to a worker and parses it itself (a chunk it can still cancel
    is not in a worker's hands).  So validation never waits for the end of parsing and no
    process sits idle.  A pool that breaks (a worker killed) costs speed, not results: its
    chunks are parsed here.
    """
    chunks = [files[i : i + CHUNK_FILES] for i in range(0, len(files), CHUNK_FILES)]
    results: list[list[R]] = [[] for _ in chunks]

    def finish(index: int, parsed: list[P]) -> None:
        results[index] = [finish_one(p, one) for p, one in zip(chunks[index], parsed, strict=True)]

    def collect(future: Future[list[P]], index: int) -> None:
        try:
            parsed = future.result()
        except BrokenProcessPool:
            parsed = [parse(path) for path in chunks[index]]
        finish(index, parsed)

    pool: ProcessPoolExecutor | None = None
    try:
        # Forking happens in submit(): a stop landing between a fork and the pool's bookkeeping
        # would leave a worker the pool does not know, waiting for work forever.
        with interrupts.deferred():
            pool = worker_pool(workers)
            # Workers are forked at the first submit and inherit the disabled garbage collector
            # (see ``load_manifests``), which would otherwise copy every inherited page it scans.
            futures: list[Future[list[P]]] = [
                pool.submit(_parse_chunk, [str(path) for path in chunk]) for chunk in chunks
            ]
        front, back = 0, len(chunks) - 1
        while front <= back:
            interrupts.check()
            if futures[front].done():
                collect(futures[front], front)
                front += 1
            elif futures[back].cancel():
                finish(back, [parse(path) for path in chunks[back]])
                back -= 1
            else:  # every chunk left is with a worker
                collect(futures[front], front)
                front += 1
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM, a deadline): no new chunk starts, the workers end.
        if pool is not None:
            _stop_workers(pool)
        raise
    pool.shutdown(wait=True)
    return [loaded for chunk in results for loaded in chunk]


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def worker_init(parent: int) -> None:
    """Set up a forked load worker so that it can never outlive or hold up this process.

    Its standard streams go to /dev/null: a worker has nothing to say (results and errors come
    back through the pool), and one holding the parent's stdout open would keep a CI step
    waiting for the end of that output after the parent is gone.  On Linux it is killed when
    the parent dies, however the parent dies.  Ctrl-C reaches the whole process group; the
    parent handles it and stops the workers itself.  Its garbage collector is off: a worker
    allocates millions of containers and no cycles, and a collection would copy every page it
    scans of the memory it shares with the parent.
    """
    gc.disable()
    # Loading is throughput work; the parent sends paced requests and must get a core the
    # moment it has one to send (a worker still gets every cycle the parent leaves idle).
    os.nice(WORKER_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, interrupts.STOP_SIGNALS)  # blocked at the fork
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the parent still stops it
            pass
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the chunks no worker has started and wait for the ones in hand (one chunk each,
    a few milliseconds), so that the workers exit by themselves; one still alive after that
    is killed.

    Killing them first would take ``concurrent.futures`` down its broken-pool path, which in
    Python 3.11 can fail on a chunk this process had cancelled to parse it itself, and print
    that failure from its manager thread.
    """
    with interrupts.deferred():
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=True, cancel_futures=True)
        for process in processes:
            process.join(timeout=2)
            if process.is_alive():
                process.kill()
                process.join(timeout=1)
