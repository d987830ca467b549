"""The two backends of `single_instance` behind one interface: one try at the lock, sync or async.

`FileTarget` tries the lock files of this host; `StoreTarget` runs the lease flow of
`._store_flow` against a store and starts the lease's renewer. `resolve` picks one from the
arguments and `reliable.configure`.
"""

from __future__ import annotations

import secrets
from collections.abc import Hashable
from typing import Any

from . import _file_lock, _lock_registry
from ._config import lock_settings, resolve_store
from ._internal import _clock
from ._internal._identity import Identity
from ._lease import Lease
from ._lease_core import Conflict, Settings, slot_key
from ._lock_dir import default_lock_dir, prepare, slot_path
from ._store_flow import acquire_flow, arun, run
from ._store_lease import StoreLease

__all__ = ["FileTarget", "StoreTarget", "Target", "resolve"]


class FileTarget(_file_lock.LockFiles):
    """The lock files of *settings* in *lock_dir*; `attempt` is `LockFiles.attempt`."""

    __slots__ = ()

    def __init__(self, settings: Settings, lock_dir: str, name_json: bytes) -> None:
        paths = [slot_path(lock_dir, settings.name, slot) for slot in range(settings.limit)]
        super().__init__(settings.name, name_json, lock_dir, paths, ("file", lock_dir, settings.name))

    async def aattempt(self, owner: _lock_registry.Owner, want_expiry: bool) -> Lease | Conflict | None:
        return self.attempt(owner, want_expiry)  # non-blocking system calls only


class StoreTarget:
    __slots__ = ("registry_key", "settings", "store")

    def __init__(self, settings: Settings, store: Any) -> None:
        self.settings = settings
        self.store = store
        self.registry_key: Hashable = ("store", Identity(store), settings.name)

    def _flow(self, owner: _lock_registry.Owner, owner_id: str, want_expiry: bool) -> Any:
        s = self.settings
        return acquire_flow(
            name=s.name,
            limit=s.limit,
            ttl=s.ttl,
            owner=owner,
            owner_id=owner_id,
            host=_file_lock.host_name(),
            since=_clock.current().time(),
            registry_key=self.registry_key,
            want_expiry=want_expiry,
        )

    def _lease(self, won: Any, owner_id: str, started: float) -> Lease | Conflict | None:
        if won is None or isinstance(won, Conflict):
            return won
        slot, version, value, token = won
        s = self.settings
        return StoreLease(
            self.store,
            owner_id,
            value,
            version,
            s.ttl,
            started,
            s.name,
            token,
            slot,
            value["pid"],
            value["host"],
            value["since"],
            slot_key(s.name, slot),
            self.registry_key,
        )

    def attempt(self, owner: _lock_registry.Owner, want_expiry: bool) -> Lease | Conflict | None:
        owner_id = secrets.token_hex(8)
        started = _clock.current().monotonic()
        lease = self._lease(run(self._flow(owner, owner_id, want_expiry), self.store), owner_id, started)
        if isinstance(lease, StoreLease):
            lease.start_renewer()
        return lease

    async def aattempt(self, owner: _lock_registry.Owner, want_expiry: bool) -> Lease | Conflict | None:
        owner_id = secrets.token_hex(8)
        started = _clock.current().monotonic()
        lease = self._lease(await arun(self._flow(owner, owner_id, want_expiry), self.store), owner_id, started)
        if isinstance(lease, StoreLease):
            lease.start_arenewer()
        return lease


Target = FileTarget | StoreTarget


def resolve(settings: Settings, name_json: bytes) -> Target:
    """The backend *settings* ask for: a store (theirs, or the configured one with ``locks="store"``), else files."""
    lock_dir, locks, network_fs = lock_settings()
    if settings.store is not None or locks == "store":
        return StoreTarget(settings, resolve_store(settings.store))
    directory = prepare(settings.lock_dir or lock_dir or default_lock_dir(), network_fs=network_fs)
    return FileTarget(settings, directory, name_json)
