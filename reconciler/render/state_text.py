"""The words of ``reconciler state``: the lock table, the unlock question, migration counts."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.escape import clean_text
from reconciler.render.words import plural
from reconciler.state import LockEntry, LockHolder


def _alive(entry: LockEntry) -> str:
    if entry.alive is None:
        return "unknown (another host)"
    return "yes" if entry.alive else "no (the holder is gone)"


def locks_table(location: str, entries: Sequence[LockEntry]) -> str:
    """Every lock, one block each, under where the state lives."""
    if not entries:
        return clean_text(f"No locks in {location}.") + "\n"
    lines = [clean_text(f"{plural(len(entries), 'lock')} in {location}:")]
    for entry in entries:
        holder = entry.holder
        lines += [
            "",
            clean_text(f"  project:  {entry.project_id}"),
            clean_text(f"  endpoint: {entry.endpoint}"),
            clean_text(f"  held by:  {holder.command} (pid {holder.pid} on {holder.host})"),
            clean_text(f"  since:    {holder.since}"),
            *([clean_text(f"  run id:   {holder.run_id}")] if holder.run_id else []),
            f"  alive:    {_alive(entry)}",
        ]
    return "\n".join(lines) + "\n"


def unlock_question(entry: LockEntry) -> str:
    """What ``state unlock`` asks before removing a lock."""
    return clean_text(
        f"Remove the lock of project {entry.project_id} at {entry.endpoint}, held by "
        f"{entry.holder.describe()}?\n"
        "  A run that still holds it stops before its next write.\n"
        "  Only 'yes' will be accepted to confirm.\n\n  Enter a value: "
    )


def unlocked_line(entry: LockEntry, holder: LockHolder | None) -> str:
    if holder is None:
        return clean_text(f"The lock of project {entry.project_id} was already gone.")
    return clean_text(
        f"Removed the lock of project {entry.project_id} at {entry.endpoint} "
        f"(was held by {holder.describe()})."
    )


def migration_lines(
    source: str,
    destination: str,
    counts: tuple[int, int, int, int],
) -> str:
    """``state migrate``'s summary: what was copied, what the destination already had."""
    records, records_present, episodes, episodes_present = counts
    return (
        clean_text(f"Copied the state from {source} to {destination}:")
        + "\n"
        + f"  write-only records: {records} copied, {records_present} already there\n"
        + f"  drift episodes:     {episodes} copied, {episodes_present} already there\n"
        + "Locks are not copied: they belong to the processes that hold them.\n"
    )
