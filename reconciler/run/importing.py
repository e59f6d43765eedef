"""``import``: write or refresh manifests from live assets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import interrupts
from reconciler.constants import READ_PARALLELISM
from reconciler.live.fetch import ProjectReads, show_all
from reconciler.options import GlobalOptions
from reconciler.run.session import open_session

if TYPE_CHECKING:
    from reconciler.importer import ImportResult, Known


@dataclass(frozen=True)
class LiveAssets:
    """What an import read: the raw live assets, the requested ids the project does not have,
    the known assets whose read failed (with why), and the target's name."""

    assets: list[dict[str, Any]]
    missing: list[str]
    unreadable: dict[str, str]
    target_name: str


async def read_live(
    options: GlobalOptions,
    asset_ids: Sequence[str],
    *,
    parallelism: int = READ_PARALLELISM,
    known: Sequence[Known] = (),
) -> LiveAssets:
    """The raw live assets: those of ``asset_ids``, or, when it is empty, all of the project,
    and the ``known`` assets (those with a manifest already) that no page held, read by id: an
    asset shifted between pages while they were read is not lost."""
    session = open_session(options)
    missing: list[str] = []
    unreadable: dict[str, str] = {}
    async with session.client(parallelism) as client:
        if asset_ids:
            wanted = list(dict.fromkeys(asset_ids))
            found = {a: item.raw for a, item in (await client.fetch(wanted)).items()}
            # Not returned by the list: missing only when ShowAsset says "not found".
            from reconciler.importer import Known

            unseen = [Known(a, None) for a in wanted if a not in found]
            shown = await show_all(unseen, client, parallelism)
            found.update(shown.found)
            assets = [found[a] for a in wanted if a in found]
            missing = [a for a in wanted if a in shown.not_found]
            unreadable = {a: why.message for a, why in shown.failed.items()}
        else:
            reads: ProjectReads[Known] = ProjectReads(client, parallelism)
            read = await reads.finish(known)
            assets = list(read.rows.values())
            unreadable = {asset_id: why.message for asset_id, why in read.failed.items()}
    return LiveAssets(assets, missing, unreadable, session.target.name)


@dataclass(frozen=True)
class ImportRun:
    """What ``import`` wrote, and the requested ids the project does not have."""

    result: ImportResult
    missing: list[str]


def import_assets(
    options: GlobalOptions,
    asset_ids: Sequence[str],
    directory: Path,
    *,
    parallelism: int = READ_PARALLELISM,
    check: bool = False,
) -> ImportRun:
    """Write or update manifests under ``directory`` from live assets (all when no ids);
    with ``check`` nothing is written and the result says what would be.

    ``--all`` reads by id every asset that already has a manifest there and that no page of
    the project held; one whose read failed is refused (its manifest is left as it is)."""
    from reconciler import importer  # only import needs them (start-up)
    from reconciler.manifest.writer import index_by_asset_id

    existing = index_by_asset_id(directory)
    known = [] if asset_ids else importer.known_assets(existing)
    live = interrupts.run(read_live(options, asset_ids, parallelism=parallelism, known=known))
    # Record the target only when one was chosen explicitly: a manifest without it follows the
    # default target, which is what a single-target setup wants.
    target = live.target_name if options.target else None
    result = importer.write_imports(
        live.assets, directory, target=target, check=check, existing=existing
    )
    result.refused += [
        f"asset {asset_id!r}: reading it failed ({why}); its manifest was not refreshed"
        for asset_id, why in live.unreadable.items()
    ]
    return ImportRun(result, live.missing)
