"""Loading in worker processes: chunks in file order, the problems of a serial load, no hang."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from reconciler.manifest import ManifestError, load_manifests
from reconciler.manifest.background import StreamedLoad
from reconciler.manifest.parallel import CHUNK_FILES, PARALLEL_MIN_FILES

HEAD = "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"


def write_many(root: Path, count: int, bad: dict[int, str] | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        body = (bad or {}).get(i, "spec: {asset_name: ok}\n")
        (root / f"m{i:05d}.yaml").write_text(f"{HEAD}metadata:\n  asset_id: a{i}\n{body}")


async def collect(paths: list[Path]) -> tuple[int, list[list[str]], list[str]]:
    async with StreamedLoad(paths) as load:
        files = load.files
        chunks = [[m.asset_id for m in chunk.manifests] async for chunk in load]
        return files, chunks, [str(p) for p in load.problems]


async def test_chunks_arrive_in_file_order_from_the_parallel_load(tmp_path: Path) -> None:
    count = PARALLEL_MIN_FILES + 150  # parsed by worker processes too
    write_many(tmp_path, count)
    files, chunks, problems = await collect([tmp_path])
    assert files == count and problems == []
    assert [len(c) for c in chunks][:-1] == [CHUNK_FILES] * (len(chunks) - 1)
    assert [i for c in chunks for i in c] == [f"a{i}" for i in range(count)]


async def test_problems_are_those_of_a_serial_load_and_the_first_bad_chunk_says_so(
    tmp_path: Path,
) -> None:
    count = PARALLEL_MIN_FILES + 100
    bad = {
        250: "spec: {asset_nme: typo}\n",
        400: "spec: {asset_name: ok, asset_description: null}\n",
        520: "spec: {asset_name: ok}\nspec: twice\n",
    }
    write_many(tmp_path, count, bad)
    (tmp_path / "m00599.yaml").write_text(f"{HEAD}metadata:\n  asset_id: a3\nspec: {{}}\n")
    with pytest.raises(ManifestError) as serial:
        load_manifests([tmp_path])
    expected = [str(p) for p in serial.value.problems]
    assert any("m00400.yaml" in p and "null is not allowed" in p for p in expected)
    assert any("declared twice" in p for p in expected)  # duplicates come last
    assert "declared twice" in expected[-1]

    async with StreamedLoad([tmp_path]) as load:
        flagged = [bool(chunk.problems) async for chunk in load]
        assert [str(p) for p in load.problems] == expected
        with pytest.raises(ManifestError):
            load.raise_problems()
    assert flagged.index(True) == 250 // CHUNK_FILES  # the chunk with the first bad file


async def test_a_missing_path_is_reported_after_discovery(tmp_path: Path) -> None:
    files, chunks, problems = await collect([tmp_path / "nope"])
    assert files == 0 and chunks == [[]]
    assert problems == [f"{tmp_path / 'nope'}: no such file or folder"]


async def test_leaving_early_cancels_the_chunks_not_started(tmp_path: Path) -> None:
    write_many(tmp_path, PARALLEL_MIN_FILES + 2000)
    async with StreamedLoad([tmp_path]) as load:
        async for _chunk in load:
            break
        pool = load._pool
        assert pool is not None
    assert load._pool is None
    pool.shutdown(wait=True)  # the chunks not started were cancelled: the workers end
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()


async def test_few_files_are_loaded_in_this_process(tmp_path: Path) -> None:
    write_many(tmp_path, 150)
    async with StreamedLoad([tmp_path]) as load:
        chunks = [len(chunk.manifests) async for chunk in load]
        assert load._pool is None
    assert chunks == [CHUNK_FILES, 50]


async def test_files_are_counted_before_any_is_parsed(tmp_path: Path) -> None:
    write_many(tmp_path, 3, {1: "spec: [not, a, mapping]\n"})
    async with StreamedLoad([tmp_path]) as load:
        assert load.files == 3 and load.problems == []
        chunks = [chunk async for chunk in load]
    assert [m.asset_id for m in chunks[0].manifests] == ["a0", "a2"]
    assert len(chunks[0].problems) == 1 and load.problems == chunks[0].problems


async def test_a_killed_worker_costs_speed_not_manifests(tmp_path: Path) -> None:
    """A worker killed mid-load (the OOM killer, a stray signal) breaks the pool: the chunks
    still to come, handed over or not, are loaded in this process, in order."""
    count = PARALLEL_MIN_FILES + 2500
    write_many(tmp_path, count)
    async with StreamedLoad([tmp_path]) as load:
        ids: list[str] = []
        async for chunk in load:
            ids.extend(m.asset_id for m in chunk.manifests)
            if len(ids) == CHUNK_FILES:  # after the first chunk: kill a worker
                assert load._pool is not None
                victim = next(iter(load._pool._processes.values()))
                victim.kill()
                victim.join(timeout=10)
        assert load.problems == []
    assert ids == [f"a{i}" for i in range(count)]
