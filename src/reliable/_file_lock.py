"""The file backend of `single_instance`: ``flock`` on lock files this process keeps open.

How it keeps mutual exclusion, and why (the failure each rule avoids):

- A lock file is never deleted, by us or on release. Deleting it lets a waiter that
  already opened the old inode lock it while a newcomer creates and locks a new file at
  the same path: two holders (filelock issue 574, portalocker issue 115).
- After the lock is taken, `link_probe` checks that the file still has a name; a descriptor
  kept open across a deletion by someone else is reopened instead of trusted.
- Descriptors are opened ``O_CLOEXEC`` and ``O_NOFOLLOW``: a program started by the job
  does not inherit the lock (and keep it after the job dies), and a symlink planted in a
  shared directory cannot redirect the lock file.
- Unlocked descriptors stay open for the next acquisition, so acquire + release costs a
  few system calls, not an ``open`` and a ``close``.
- ``flock`` belongs to the open file description, shared by a forked child: the child
  closes its copies at fork and never unlocks (that would release the parent's lock).
- The holder metadata (JSON: ``token``, ``since``, ``pid``, ``slot``, ``host``, ``name``)
  is written into the lock file while holding it, with one ``pwrite`` (plus an
  ``ftruncate`` only when the previous record was longer); the fencing ``token`` is the
  previous one plus one, so it only grows for as long as the file exists. Release writes
  nothing: whether a file is locked is the kernel's to say (``/proc/locks``, see
  `lock_holders`), and the metadata stays as the record of the last holder.

``fcntl.flock(fd, LOCK_EX | LOCK_NB)`` is called directly rather than through
``portalocker.lock``: it is the call portalocker's POSIX locker ends in, with the same
reading of ``EAGAIN``/``EACCES`` as "held by someone else". Measured (portalocker 4.4,
CPython 3.11): on a kept-open file ``portalocker.lock`` + ``portalocker.unlock`` cost 8.5 µs
against 1.0 µs for the two ``flock`` calls (benchmarks/test_bench_single_instance.py), its
``IntFlag`` flag checks taking most of it, out of the 10 µs this backend may spend on acquire +
release (its five system calls take 4); and ``import portalocker`` takes 140 ms where redis-py
is installed, because the package imports its Redis lock and redis with it (5 ms otherwise),
which every process taking its first lock would pay.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
from collections.abc import Callable, Hashable

from . import _lock_registry
from ._internal import _clock, _telemetry
from ._lease import Lease
from ._lease_core import Conflict, Holder, holder_from_value
from ._lock_dir import link_probe
from ._lock_fds import FLAGS, MAX_IDLE, READ_BYTES, idle, lock_new, next_counter, park, token_in

__all__ = ["FileLease", "LockFiles", "host_name", "read_holder"]

_flock, _pread, _pwrite = fcntl.flock, os.pread, os.pwrite

_held: dict[int, FileLease] = {}
"""Descriptor → the lease holding its lock, so a forked child can close its copies."""
_host = socket.gethostname()
_host_json = json.dumps(_host, ensure_ascii=False).encode()


def host_name() -> str:
    """This host's name, as written into holder metadata."""
    return _host


class FileLease(Lease):
    """A `Lease` held as an ``flock`` on a lock file."""

    __slots__ = ("_entry", "_fd")
    backend = "file"

    def __init__(
        self,
        fd: int,
        name: str,
        token: int,
        slot: int,
        pid: int,
        since: float,
        where: str,
        registry_key: Hashable,
        entry: _lock_registry.Entry,
        acquired_at: float,
    ) -> None:
        # Lease.__init__, inlined: this runs on every acquisition.
        self.name = name
        self.token = token
        self.slot = slot
        self.pid = pid
        self.host = _host
        self.since = since
        self.where = where
        self._registry_key = registry_key
        self._acquired_at = acquired_at
        self._lost: str | None = None
        self._released = False
        self._fd = fd
        self._entry = entry

    def check(self) -> None:
        self._raise_if_lost()
        try:
            deleted = os.fstat(self._fd).st_nlink == 0
        except OSError as exc:
            deleted, reason = True, f"its descriptor failed ({exc})"
        else:
            reason = "its lock file was deleted, so another process can lock a new file at that path"
        if deleted:
            self._mark_lost(reason)
            self._raise_if_lost()

    def release(self) -> None:
        if self._released:
            return
        fd, self._fd = self._fd, -1
        self._released = True
        if self.pid != _lock_registry.pid:
            return  # a forked child: its copy was closed at fork; unlocking would free the parent's lock
        del _held[fd]
        try:
            _flock(fd, fcntl.LOCK_UN)
        except OSError:
            os.close(fd)  # closing the last descriptor frees the lock too
        else:
            if len(idle) >= MAX_IDLE or idle.setdefault(self.where, fd) != fd:  # `park`, inlined
                os.close(fd)
        entry = self._entry
        entry.slots.pop(self.slot, None)  # `_lock_registry.free`, inlined unless someone waits
        if entry.waiters or entry.futures:
            _lock_registry.free(entry, self.slot)
        if _telemetry.enabled("single_instance", logging.DEBUG):
            self._report_released()
        else:
            _telemetry.count("single_instance", "released", self.name)


def read_holder(name: str, path: str) -> Holder | None:
    """The holder a lock file names, or None if it names none (released, empty or unreadable)."""
    fd = idle.get(path)
    try:
        if fd is not None:
            data = os.pread(fd, READ_BYTES, 0)
        else:
            with open(path, "rb") as f:
                data = f.read(READ_BYTES)
        value = json.loads(data or b"{}")
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict) or "pid" not in value:
        return None
    return holder_from_value(name, value)


class LockFiles:
    """The lock files of one name in one directory (one per slot), and what every acquisition of them reuses.

    Per process (refreshed in a forked child): the in-process registry entry of the lock,
    the static end of each slot's holder record (pid, slot, host, name), so an acquisition
    formats only its token and start time, and each slot's `link_probe`.
    """

    __slots__ = ("_entry", "_linked", "_pid", "_tails", "lock_dir", "name", "name_json", "paths", "registry_key")

    def __init__(self, name: str, name_json: bytes, lock_dir: str, paths: list[str], registry_key: Hashable) -> None:
        self.name = name
        self.name_json = name_json
        self.lock_dir = lock_dir
        self.paths = paths
        self.registry_key = registry_key
        self._pid = -1
        """The process the two caches below were made in."""
        self._entry = _lock_registry.Entry()
        self._tails: list[bytes] = []
        self._linked: list[Callable[[int], bool]] = []

    def _refresh(self) -> _lock_registry.Entry:
        pid = _lock_registry.pid
        entry = self._entry = _lock_registry.entry(self.registry_key)
        self._tails = [
            b'"pid":%d,"slot":%d,"host":%s,"name":%s}\n' % (pid, slot, _host_json, self.name_json)
            for slot in range(len(self.paths))
        ]
        # One probe per slot: only the thread that reserved a slot in the registry locks its file.
        self._linked = [link_probe() for _ in self.paths]
        self._pid = pid
        return entry

    def attempt(self, owner: _lock_registry.Owner, want_expiry: bool = False) -> FileLease | Conflict | None:
        """One non-blocking try at every slot: the lease, who holds the slots, or None if *owner* holds one already.

        *want_expiry* is ignored: a file lock has no expiry.
        """
        entry = self._entry if self._pid == _lock_registry.pid else self._refresh()
        if len(self.paths) == 1:
            slots = entry.slots
            # The common case: one slot, that no thread or task of this process holds (reserving
            # it is one atomic setdefault, see `_lock_registry.take`), and a kept descriptor
            # that locks at once and whose file still has a name. Anything else: `_try`.
            if not slots and slots.setdefault(0, owner) is owner:
                path = self.paths[0]
                try:
                    fd = idle.pop(path, -1)
                    if fd >= 0:
                        try:
                            _flock(fd, FLAGS)
                        except OSError:
                            park(path, fd)  # busy, or failing: `lock_new` says which
                        else:
                            if self._linked[0](fd):
                                return self._hold(fd, entry, 0, path)
                            _flock(fd, fcntl.LOCK_UN)
                            park(path, fd)
                    lease = self._try(entry, 0)
                except BaseException:
                    _lock_registry.free(entry, 0)
                    raise
                if lease is not None:
                    return lease
                _lock_registry.free(entry, 0)
                return self._conflict([0], in_process=False)
        in_process = False
        busy: list[int] = []
        for slot in range(len(self.paths)):
            taken = _lock_registry.take(self.registry_key, slot, owner)
            if taken == _lock_registry.MINE:
                return None
            if taken == _lock_registry.BUSY:
                in_process = True
                busy.append(slot)
                continue
            try:
                lease = self._try(entry, slot)
            except BaseException:
                _lock_registry.free(entry, slot)
                raise
            if lease is not None:
                return lease
            _lock_registry.free(entry, slot)
            busy.append(slot)
        return self._conflict(busy, in_process=in_process)

    def _conflict(self, busy: list[int], *, in_process: bool) -> Conflict:
        holders = [h for h in (read_holder(self.name, self.paths[s]) for s in busy) if h is not None]
        return Conflict(holders, in_process, None)

    def _try(self, entry: _lock_registry.Entry, slot: int) -> FileLease | None:
        """Lock the file of *slot*: the lease, or None if another process holds it.

        The caller reserved *slot* in this process, and gives it back if this returns None or raises.
        """
        path = self.paths[slot]
        fd = lock_new(path, self._linked[slot])
        return None if fd is None else self._hold(fd, entry, slot, path)

    def _hold(self, fd: int, entry: _lock_registry.Entry, slot: int, path: str) -> FileLease:
        """Write the holder metadata into the file *fd* has locked, and make the lease; unlock if that fails.

        The record: ``token`` (the previous one + 1, or the shared counter's next with several
        slots) and ``since`` first, then the static tail made in `_refresh`.
        """
        try:
            data = _pread(fd, READ_BYTES, 0)
            token = token_in(data) + 1 if len(self.paths) == 1 else next_counter(self.lock_dir, self.name)
            clock = _clock.current()
            since = clock.time()
            record = b'{"token":%d,"since":%.6f,%b' % (token, since, self._tails[slot])
            _pwrite(fd, record, 0)
            if len(data) > len(record):
                os.ftruncate(fd, len(record))
            lease = _held[fd] = FileLease(
                fd, self.name, token, slot, self._pid, since, path, self.registry_key, entry, clock.monotonic()
            )
        except BaseException:
            _flock(fd, fcntl.LOCK_UN)
            park(path, fd)
            raise
        return lease


def _after_fork_in_child() -> None:
    """Close the child's copies of every held lock descriptor; never unlock them (the parent still holds them)."""
    for fd, lease in list(_held.items()):
        lease._fd = -1
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
