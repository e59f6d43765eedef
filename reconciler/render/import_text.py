"""The words of ``import``: one line per manifest file and the closing summary."""

from __future__ import annotations

import json
from typing import Any

from reconciler.constants import ASSET_NOT_FOUND
from reconciler.escape import clean_text
from reconciler.fieldpath import format_path
from reconciler.importer import ImportResult
from reconciler.manifest.writer import SpecEdit


def file_lines(result: ImportResult) -> list[str]:
    """One line per file; under each updated file, every value the update changes."""
    if result.check:
        out = [f"would create  {clean_text(p)}" for p in result.created]
    else:
        out = [f"created  {clean_text(p)}" for p in result.created]
    if result.schema is not None:
        out.append(f"schema   {clean_text(result.schema)}")
    for path in result.updated:
        verb = "would update" if result.check else "updated"
        out.append(f"{verb}  {clean_text(path)}")
        out += [f"    {edit_line(asset_id, e)}" for asset_id, e in result.edits.get(path, [])]
    out += [f"in sync  {clean_text(p)}" for p in result.unchanged]
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def edit_line(asset_id: str, edit: SpecEdit) -> str:
    """``~ asset_name: "Local edit" -> "Sara Model" (asset 93769b5a-...)``."""
    where = format_path(edit.path) or "spec"
    if edit.kind == "+":
        change = f"{_show(edit.after)} (from live)"
    elif edit.before is None:
        change = "removed"
    else:
        change = f"{_show(edit.before)} -> {_show(edit.after)}"
    return clean_text(f"{edit.kind} {where}: {change} (asset {asset_id})")


def missing_line(asset_id: str) -> str:
    return f"Error: asset {clean_text(asset_id)} does not exist ({ASSET_NOT_FOUND})"


def refused_line(reason: str) -> str:
    return f"Error: {clean_text(reason)}"


def skipped_line(reason: str) -> str:
    return f"Note: {clean_text(reason)}"


def warning_line(warning: str) -> str:
    return f"Warning: {clean_text(warning)}"


def summary(result: ImportResult) -> str:
    refused = f", {len(result.refused)} refused" if result.refused else ""
    if result.skipped:
        refused += f", {len(result.skipped)} skipped (not updatable)"
    if result.check:
        return (
            f"Import check: {len(result.created)} to create, {len(result.updated)} to update, "
            f"{len(result.unchanged)} already in sync{refused}; nothing was written."
        )
    return (
        f"Import: {len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.unchanged)} already in sync{refused}."
    )
