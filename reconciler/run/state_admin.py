"""``reconciler state``: look after the state itself (list and remove locks, migrate).

Like ``terraform force-unlock``, a lock is removed by what a person knows (a target, an
endpoint or a project id), never by a secret id; unlike it, the locks can be listed first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.api.config import ReconcilerConfig, config_path, load_config, resolve_target
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.options import GlobalOptions
from reconciler.run.session import hide_url_password, open_config_store, state_location
from reconciler.state import LockEntry, LockHolder, StateStore, open_store


@dataclass(frozen=True)
class LockListing:
    """The locks of the configured state, and where it lives (no password)."""

    location: str
    entries: list[LockEntry]


def list_locks(options: GlobalOptions) -> LockListing:
    """Every lock of the configured state (``RECONCILER_STATE``, else ``state:``)."""
    with _configured(options) as store:
        return LockListing(store.location, store.locks.entries())


def find_lock(options: GlobalOptions, key: str) -> LockEntry:
    """The one lock ``key`` names: a target of reconciler.yaml, an endpoint or a project id."""
    config = load_config(config_path(options))
    with open_config_store(config) as store:
        entries = store.locks.entries()
        location = store.location
    wanted = _places(options, config, key)
    found = [e for e in entries if (e.endpoint, e.project_id) in wanted or _named(e, key)]
    if not found:
        held = ", ".join(f"{e.project_id} at {e.endpoint}" for e in entries) or "none"
        raise ReconcilerError(f"no lock in {location} matches {key!r} (locks: {held})")
    if len(found) > 1:
        names = ", ".join(f"{e.project_id} at {e.endpoint}" for e in found)
        raise ReconcilerError(
            f"{key!r} matches {len(found)} locks in {location} ({names}); name the project "
            "or the endpoint"
        )
    return found[0]


def remove_lock(options: GlobalOptions, entry: LockEntry) -> LockHolder | None:
    """Remove the lock of ``entry``'s project, whoever holds it; the holder it had."""
    with _configured(options) as store:
        return store.locks.unlock(entry.endpoint, entry.project_id)


@dataclass(frozen=True)
class Migration:
    """What ``state migrate`` copied: new rows, and rows the destination already had."""

    source: str
    destination: str
    records: int
    records_present: int
    episodes: int
    episodes_present: int


def migrate(options: GlobalOptions, destination: str) -> Migration:
    """Copy the write-only records and the drift history of the configured state into
    ``destination`` (locks are not copied: they belong to running processes).  Running it
    again copies nothing twice, and a record the destination holds from a later apply is
    kept."""
    config = load_config(config_path(options))
    hide_url_password(destination)
    with open_config_store(config) as source, open_store(destination) as target:
        if source.location == target.location:
            raise ReconcilerError(f"the state is already at {source.location}; nothing to copy")
        copied = present = 0
        for project_id, asset_id, record in source.records.all_records():
            there = target.records.get(project_id, asset_id)
            # An equal record, or a newer one (an apply since the switch): never overwritten
            # by an older copy, which would make a plan take an old value for the live one.
            if there is not None and there.applied_at >= record.applied_at:
                present += 1
                continue
            target.records.record(project_id, asset_id, record.fingerprint, record.applied_at)
            copied += 1
        episodes = episodes_present = 0
        for episode in source.history.all_episodes():
            if target.history.import_episode(episode):
                episodes += 1
            else:
                episodes_present += 1
        return Migration(
            source.location, target.location, copied, present, episodes, episodes_present
        )


def _configured(options: GlobalOptions) -> StateStore:
    return open_config_store(load_config(config_path(options)))


def _places(options: GlobalOptions, config: ReconcilerConfig, key: str) -> set[tuple[str, str]]:
    """The (endpoint, project) of a target named ``key``, when the configuration has one."""
    if key not in config.targets:
        return set()
    try:
        target = resolve_target(options, key, config=config)
    except ConfigError:
        return set()
    return {(target.endpoint.rstrip("/"), target.project_id)}


def _named(entry: LockEntry, key: str) -> bool:
    return key in (entry.project_id, entry.endpoint) or key.rstrip("/") == entry.endpoint


def location_of(options: GlobalOptions) -> str | Path | None:
    """Where the configured state lives (a path, a URL, or None for the default)."""
    return state_location(load_config(config_path(options)))
