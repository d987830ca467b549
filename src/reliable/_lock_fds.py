"""Descriptors of lock files: opened once, kept open between acquisitions, locked without blocking.

`lock_new` locks a descriptor it opens or takes from the idle pool; the hot path in
``_file_lock.py`` relocks a kept descriptor inline. Both call ``flock`` (see that module's
docstring for why not ``portalocker.lock``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
from collections.abc import Callable

from ._errors import LockError
from ._lock_dir import counter_path

__all__ = [
    "BUSY",
    "FLAGS",
    "MAX_IDLE",
    "READ_BYTES",
    "idle",
    "lock_new",
    "next_counter",
    "open_file",
    "park",
    "token_in",
]

FLAGS = fcntl.LOCK_EX | fcntl.LOCK_NB
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
BUSY = frozenset({errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK})
MAX_IDLE = 256
READ_BYTES = 4096
"""Bytes of a lock file read back: its metadata is one short JSON line (names are at most 200 characters)."""

idle: dict[str, int] = {}
"""Lock file path → an open, unlocked descriptor kept for the next acquisition."""
_counter_lock = threading.Lock()


def open_file(path: str) -> int:
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


def park(path: str, fd: int) -> None:
    """Keep an unlocked descriptor for the next acquisition of *path*, or close it."""
    if len(idle) >= MAX_IDLE or idle.setdefault(path, fd) != fd:  # setdefault: two threads may park at once
        os.close(fd)


def lock_new(path: str, linked: Callable[[int], bool]) -> int | None:
    """Lock *path* without blocking: the locked descriptor, or None if another holder has it.

    *linked* is a `link_probe` of the caller's own (it may keep a buffer).
    """
    fd = idle.pop(path, -1)
    if fd < 0:
        fd = open_file(path)
    for _ in range(3):
        try:
            fcntl.flock(fd, FLAGS)
        except OSError as exc:
            if exc.errno in BUSY:
                park(path, fd)
                return None
            os.close(fd)
            msg = (
                f"cannot lock {path!r}: {exc.strerror or exc} (errno {exc.errno}); if the lock directory is on "
                "a network filesystem, use a local lock_dir"
            )
            raise LockError(msg, path=path) from exc
        if linked(fd):
            return fd
        # Someone deleted the file while this descriptor was open: its lock guards nothing.
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        fd = open_file(path)
    os.close(fd)
    msg = f"lock file {path!r} keeps being deleted; stop whatever removes files in the lock directory"
    raise LockError(msg, path=path)


def token_in(data: bytes) -> int:
    """The token field of lock file contents (0 if there is none)."""
    start = 9 if data.startswith(b'{"token":') else data.find(b'"token":') + 8
    if start < 8:
        return 0
    end = data.find(b",", start)
    try:
        return int(data[start : end if end > 0 else None])
    except ValueError:
        return 0


def next_counter(lock_dir: str, name: str) -> int:
    """Increment the shared token counter of a lock with several slots (under its own short flock)."""
    path = counter_path(lock_dir, name)
    with _counter_lock:
        fd = idle.pop(path, -1)
        if fd < 0:
            fd = open_file(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                token = token_in(os.pread(fd, READ_BYTES, 0)) + 1
                record = b'{"token":%d,"name":%s}\n' % (token, json.dumps(name, ensure_ascii=False).encode())
                os.pwrite(fd, record, 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            park(path, fd)
    return token


def _after_fork_in_child() -> None:
    """Close the child's kept descriptors (idle ones hold no lock) and renew the counter's thread lock."""
    global _counter_lock
    _counter_lock = threading.Lock()
    for fd in list(idle.values()):
        with contextlib.suppress(OSError):
            os.close(fd)
    idle.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
