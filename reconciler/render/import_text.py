"""The words of ``import``: one line per manifest file and the closing summary."""

from __future__ import annotations

from reconciler.constants import ASSET_NOT_FOUND
from reconciler.escape import clean_text
from reconciler.importer import ImportResult


def file_lines(result: ImportResult) -> list[str]:
    out = [f"created  {clean_text(p)}" for p in result.created]
    if result.schema is not None:
        out.append(f"schema   {clean_text(result.schema)}")
    out += [f"updated  {clean_text(p)}" for p in result.updated]
    out += [f"in sync  {clean_text(p)}" for p in result.unchanged]
    return out


def missing_line(asset_id: str) -> str:
    return f"Error: asset {clean_text(asset_id)} does not exist ({ASSET_NOT_FOUND})"


def refused_line(reason: str) -> str:
    return f"Error: {clean_text(reason)}"


def warning_line(warning: str) -> str:
    return f"Warning: {clean_text(warning)}"


def summary(result: ImportResult) -> str:
    refused = f", {len(result.refused)} refused" if result.refused else ""
    return (
        f"Import: {len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.unchanged)} already in sync{refused}."
    )
