"""The words of ``import``: one line per manifest file and the closing summary."""

from __future__ import annotations

from reconciler.constants import ASSET_NOT_FOUND
from reconciler.importer import ImportResult


def file_lines(result: ImportResult) -> list[str]:
    out = [f"created  {p}" for p in result.created]
    if result.schema is not None:
        out.append(f"schema   {result.schema}")
    out += [f"updated  {p}" for p in result.updated]
    out += [f"in sync  {p}" for p in result.unchanged]
    return out


def missing_line(asset_id: str) -> str:
    return f"Error: asset {asset_id} does not exist ({ASSET_NOT_FOUND})"


def summary(result: ImportResult) -> str:
    return (
        f"Import: {len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.unchanged)} already in sync."
    )
