"""The file backend of `single_instance`: ``flock`` on lock files this process keeps open.

How it keeps mutual exclusion, and why (the failure each rule avoids):

- A lock file is never deleted, by us or on release. Deleting it lets a waiter that
  already opened the old inode lock it while a newcomer creates and locks a new file at
  the same path: two holders (filelock issue 574, portalocker issue 115).
- After the lock is taken, ``fstat`` checks that the file still has a name; a descriptor
  kept open across a deletion by someone else is reopened instead of trusted.
- Descriptors are opened ``O_CLOEXEC`` and ``O_NOFOLLOW``: a program started by the job
  does not inherit the lock (and keep it after the job dies), and a symlink planted in a
  shared directory cannot redirect the lock file.
- Unlocked descriptors stay open for the next acquisition, so acquire + release costs a
  few system calls, not an ``open`` and a ``close``.
- ``flock`` belongs to the open file description, shared by a forked child: the child
  closes its copies at fork and never unlocks (that would release the parent's lock).
- The holder metadata (JSON: ``token``, ``pid``, ``since``, ``slot``, ``host``, ``name``)
  is written into the lock file while holding it; the fencing ``token`` is the previous
  one plus one, so it only grows for as long as the file exists. Release writes nothing:
  whether a file is locked is the kernel's to say (``/proc/locks``, see `lock_holders`),
  and the metadata stays as the record of the last holder.

``fcntl.flock(fd, LOCK_EX | LOCK_NB)`` is called directly: it is the call
``portalocker.lock(fd, LockFlags.EXCLUSIVE | LockFlags.NON_BLOCKING)`` ends in, with the
same reading of ``EAGAIN``/``EACCES`` as "held by someone else", without the ~10 µs of flag
validation and dispatch around it (measured in benchmarks/test_bench_single_instance.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
from collections.abc import Hashable

from . import _lock_registry
from ._errors import LockError
from ._internal import _clock
from ._lease import Lease
from ._lease_core import Conflict, Holder, holder_from_value
from ._lock_dir import counter_path

__all__ = ["FileLease", "host_name", "try_acquire"]

_FLAGS = fcntl.LOCK_EX | fcntl.LOCK_NB
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_BUSY = frozenset({errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK})
_MAX_IDLE = 256
_READ = 4096
"""Bytes of a lock file read back: its metadata is one short JSON line (names are at most 200 characters)."""

_idle: dict[str, int] = {}
"""Lock file path → an open, unlocked descriptor kept for the next acquisition."""
_held: dict[int, FileLease] = {}
"""Descriptor → the lease holding its lock, so a forked child can close its copies."""
_counter_lock = threading.Lock()
_host = socket.gethostname()
_host_json = json.dumps(_host, ensure_ascii=False).encode()


def host_name() -> str:
    """This host's name, as written into holder metadata."""
    return _host


def _open(path: str) -> int:
    try:
        try:
            return os.open(path, _OPEN_FLAGS, 0o644)
        except FileNotFoundError:  # the lock directory was removed since: make it again
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            return os.open(path, _OPEN_FLAGS, 0o644)
    except OSError as exc:
        msg = (
            f"cannot open lock file {path!r}: {exc.strerror or exc}; make its directory writable "
            "by this user, or pass lock_dir= a directory of your own"
        )
        raise LockError(msg, path=path) from exc


def _park(path: str, fd: int) -> None:
    """Keep an unlocked descriptor for the next acquisition of *path*, or close it."""
    if len(_idle) < _MAX_IDLE and path not in _idle:
        _idle[path] = fd
    else:
        os.close(fd)


def _flock(path: str) -> int | None:
    """Lock *path* without blocking: the locked descriptor, or None if another holder has it."""
    fd = _idle.pop(path, None)
    if fd is None:
        fd = _open(path)
    for _ in range(3):
        try:
            fcntl.flock(fd, _FLAGS)
        except OSError as exc:
            if exc.errno in _BUSY:
                _park(path, fd)
                return None
            os.close(fd)
            msg = (
                f"cannot lock {path!r}: {exc.strerror or exc} (errno {exc.errno}); if the lock directory is on "
                "a network filesystem, use a local lock_dir"
            )
            raise LockError(msg, path=path) from exc
        if os.fstat(fd).st_nlink:
            return fd
        # Someone deleted the file while this descriptor was open: its lock guards nothing.
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        fd = _open(path)
    os.close(fd)
    msg = f"lock file {path!r} keeps being deleted; stop whatever removes files in the lock directory"
    raise LockError(msg, path=path)


def _token_in(data: bytes) -> int:
    """The token field of lock file contents (0 if there is none)."""
    start = data.find(b'"token":')
    if start < 0:
        return 0
    end = data.find(b",", start)
    try:
        return int(data[start + 8 : end if end > 0 else None])
    except ValueError:
        return 0


def _next_counter(lock_dir: str, name: str) -> int:
    """Increment the shared token counter of a lock with several slots (under its own short flock)."""
    path = counter_path(lock_dir, name)
    with _counter_lock:
        fd = _idle.pop(path, None)
        if fd is None:
            fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                token = _token_in(os.pread(fd, _READ, 0)) + 1
                record = b'{"token":%d,"name":%s}\n' % (token, json.dumps(name, ensure_ascii=False).encode())
                os.pwrite(fd, record, 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            _park(path, fd)
    return token


class FileLease(Lease):
    """A `Lease` held as an ``flock`` on a lock file."""

    __slots__ = ("_fd",)
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
        self._acquired_at = _clock.current().monotonic()
        self._lost: str | None = None
        self._released = False
        self._fd = fd

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
        if self.pid != _lock_registry.pid:
            # A forked child: its copy was closed at fork; unlocking would free the parent's lock.
            self._released = True
            return
        del _held[fd]
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            os.close(fd)  # closing the last descriptor frees the lock too
        else:
            _park(self.where, fd)
        self._finish_release()


def read_holder(name: str, path: str) -> Holder | None:
    """The holder a lock file names, or None if it names none (released, empty or unreadable)."""
    fd = _idle.get(path)
    try:
        if fd is not None:
            data = os.pread(fd, _READ, 0)
        else:
            with open(path, "rb") as f:
                data = f.read(_READ)
        value = json.loads(data or b"{}")
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict) or "pid" not in value:
        return None
    return holder_from_value(name, value)


def try_acquire(
    name: str, name_json: bytes, paths: list[str], lock_dir: str, owner: _lock_registry.Owner, registry_key: Hashable
) -> FileLease | Conflict | None:
    """One non-blocking try at every slot: the lease, who holds the slots, or None if *owner* holds one already."""
    in_process = False
    busy: list[int] = []
    limit = len(paths)
    for slot in range(limit):
        taken = _lock_registry.take(registry_key, slot, owner)
        if taken:
            if taken == _lock_registry.MINE:
                return None
            in_process = True
            busy.append(slot)
            continue
        path = paths[slot]
        try:
            fd = _flock(path)
            if fd is None:
                busy.append(slot)
                _lock_registry.give_back(registry_key, slot)
                continue
            try:
                return _hold(fd, name, name_json, slot, limit, lock_dir, path, registry_key)
            except BaseException:
                fcntl.flock(fd, fcntl.LOCK_UN)
                _park(path, fd)
                raise
        except BaseException:
            _lock_registry.give_back(registry_key, slot)
            raise
    holders = [h for h in (read_holder(name, paths[s]) for s in busy) if h is not None]
    return Conflict(holders, in_process, None)


def _hold(
    fd: int, name: str, name_json: bytes, slot: int, limit: int, lock_dir: str, path: str, registry_key: Hashable
) -> FileLease:
    """Write the holder metadata into the locked file and make the lease."""
    data = os.pread(fd, _READ, 0)
    token = _token_in(data) + 1 if limit == 1 else _next_counter(lock_dir, name)
    pid = _lock_registry.pid
    since = _clock.current().time()
    record = b'{"token":%d,"pid":%d,"since":%.6f,"slot":%d,"host":%s,"name":%s}\n' % (
        token,
        pid,
        since,
        slot,
        _host_json,
        name_json,
    )
    os.pwrite(fd, record, 0)
    if len(data) > len(record):
        os.ftruncate(fd, len(record))
    lease = FileLease(fd, name, token, slot, pid, since, path, registry_key)
    _held[fd] = lease
    return lease


def _after_fork_in_child() -> None:
    """Close the child's copies of every lock descriptor; never unlock them (the parent still holds them)."""
    global _counter_lock
    _counter_lock = threading.Lock()
    for fd, lease in list(_held.items()):
        lease._fd = -1
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()
    for fd in list(_idle.values()):
        with contextlib.suppress(OSError):
            os.close(fd)
    _idle.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
