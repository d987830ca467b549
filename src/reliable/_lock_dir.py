"""Where file locks live: the lock directory, lock file names, network-filesystem checks, and `lock_holders`.

The default directory is ``$XDG_STATE_HOME/reliable/locks`` (``~/.local/state/reliable/locks``),
not ``$XDG_RUNTIME_DIR``: cron and systemd timers usually run without ``XDG_RUNTIME_DIR``,
while a login shell has it, so a directory chosen from it would differ between a cron run and
a manual run of the same job, and they would not exclude each other. ``RELIABLE_LOCK_DIR``,
``reliable.configure(lock_dir=...)`` and ``single_instance(..., lock_dir=...)`` override it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ._errors import ConfigError, LockError
from ._lease_core import holder_from_value

__all__ = ["NETWORK_FS", "default_lock_dir", "link_probe", "lock_holders", "mount_fs_type", "prepare", "slot_path"]

NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "glusterfs", "lustre", "gpfs"}
    | {"davfs", "virtiofs", "fuse", "fuseblk", "sshfs", "vboxsf", "prl_fs", "beegfs", "ocfs2", "gfs2"}
)
"""Filesystem types where ``flock`` may not exclude processes of other hosts (or at all)."""

_SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
_prepared: dict[str, str] = {}
_prepare_lock = threading.Lock()


def default_lock_dir() -> str:
    """``$RELIABLE_LOCK_DIR``, else ``$XDG_STATE_HOME/reliable/locks``, else ``~/.local/state/reliable/locks``."""
    env = os.environ.get("RELIABLE_LOCK_DIR")
    if env:
        return env
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "reliable", "locks")


@lru_cache(maxsize=1024)
def file_stem(name: str) -> str:
    """A file name for lock *name*: itself when it is a safe file name, else a readable part plus a hash."""
    if _SAFE.fullmatch(name):
        return name
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "lock"
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{readable}-{digest}"


def slot_path(lock_dir: str, name: str, slot: int) -> str:
    """``<dir>/<name>.lock`` for slot 0, ``<dir>/<name>.<slot>.lock`` for the others."""
    stem = file_stem(name)
    return os.path.join(lock_dir, f"{stem}.lock" if slot == 0 else f"{stem}.{slot}.lock")


def counter_path(lock_dir: str, name: str) -> str:
    """The file holding the fencing-token counter of a lock with ``limit > 1``."""
    return os.path.join(lock_dir, f"{file_stem(name)}.token")


def prepare(lock_dir: str, *, network_fs: str) -> str:
    """Create *lock_dir* if needed and check its filesystem, once per directory; return it.

    Raises:
        ConfigError: the directory is on a network filesystem and *network_fs* is ``"refuse"``.
        LockError: the directory cannot be created.
    """
    done = _prepared.get(lock_dir)
    if done == network_fs:
        return lock_dir
    with _prepare_lock:
        try:
            os.makedirs(lock_dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create lock directory {lock_dir!r}: {exc}; pass lock_dir= a writable directory"
            raise LockError(msg, lock_dir=lock_dir) from exc
        fs_type = mount_fs_type(os.path.realpath(lock_dir))
        if fs_type is not None and is_network_fs(fs_type) and network_fs != "allow":
            msg = (
                f"lock directory {lock_dir!r} is on a {fs_type} filesystem, where flock() may not keep processes "
                "on other hosts (or at all) from holding the same lock; use a local lock_dir, or a shared store "
                "for locks across hosts (single_instance(..., store=...) or configure(locks='store'))"
            )
            if network_fs == "refuse":
                raise ConfigError(msg + "; set configure(lock_network_fs='warn') to allow it", lock_dir=lock_dir)
            warnings.warn(msg, RuntimeWarning, stacklevel=5)
        _prepared[lock_dir] = network_fs
    return lock_dir


def is_network_fs(fs_type: str) -> bool:
    return fs_type in NETWORK_FS or fs_type.startswith(("fuse.", "nfs"))


def _unescape(field: str) -> str:
    """Mount points in /proc tables escape space, tab, newline and backslash as octal (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(mountinfo: str | None, mounts: str | None = None) -> list[tuple[str, str]]:
    """``(mount point, fs type)`` pairs from /proc/self/mountinfo text, else from /proc/mounts text."""
    pairs: list[tuple[str, str]] = []
    if mountinfo:
        for line in mountinfo.splitlines():
            left, sep, right = line.partition(" - ")
            fields, after = left.split(), right.split()
            if sep and len(fields) >= 5 and after:
                pairs.append((_unescape(fields[4]), after[0]))
    elif mounts:
        for line in mounts.splitlines():
            fields = line.split()
            if len(fields) >= 3:
                pairs.append((_unescape(fields[1]), fields[2]))
    return pairs


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def mount_fs_type(path: str, *, mountinfo: str | None = None, mounts: str | None = None) -> str | None:
    """The filesystem type of the mount holding *path* (longest mount-point prefix), or None if unknown."""
    if mountinfo is None and mounts is None:
        mountinfo = _read("/proc/self/mountinfo")
        if mountinfo is None:
            mounts = _read("/proc/mounts")
    best: tuple[int, str] | None = None
    for point, fs_type in parse_mounts(mountinfo, mounts):
        prefix = point.rstrip("/") + "/"
        if (path == point or path.startswith(prefix) or point == "/") and (best is None or len(point) >= best[0]):
            best = (len(point), fs_type)
    return None if best is None else best[1]


_STATX_NLINK = 0x4
_AT_EMPTY_PATH = 0x1000
_AT_FDCWD = -100
_STATX_SIZE = 256
_statx: list[Callable[..., int] | None] = []
"""libc's ``statx`` (None where it is missing or fails), once the first `link_probe` looked it up."""


def _find_statx() -> Callable[..., int] | None:
    """libc's ``statx`` when this Linux libc and kernel have it (checked with one call), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        statx: Callable[..., int] = ctypes.CDLL(None).statx
        if statx(_AT_FDCWD, b"/", 0, _STATX_NLINK, ctypes.create_string_buffer(_STATX_SIZE)) != 0:
            return None
    except (ImportError, OSError, AttributeError):
        return None
    return statx


def _linked_by_fstat(fd: int) -> bool:
    try:
        return os.fstat(fd).st_nlink != 0
    except OSError:  # ESTALE and the like: treat the file as gone, so the caller opens it again
        return False


def link_probe() -> Callable[[int], bool]:
    """A function telling whether an open file still has a name (a link count above zero).

    ``os.fstat`` answers that too, but it also reads the file's change time, and on Linux
    6.13+ (multigrain timestamps) a read change time makes the next write stamp a
    fine-grained time and dirty the inode: on ext4 the holder record's ``pwrite`` then costs
    about 2 µs more, every acquisition (measured: flock + fstat + pread + pwrite + unlock
    5.5 µs, with ``statx`` asking for the link count alone 4.1 µs). So where libc has
    ``statx``, the probe calls it through ctypes, into a buffer of its own: use each probe
    from one thread at a time. Elsewhere, or if a call fails, it is ``fstat``. A file whose
    status cannot be read counts as deleted (never raises).
    """
    if not _statx:
        _statx.append(_find_statx())
    statx = _statx[0]
    if statx is None:
        return _linked_by_fstat
    import ctypes

    buf = ctypes.create_string_buffer(_STATX_SIZE)
    words = memoryview(buf).cast("B").cast("I")  # struct statx: stx_mask is word 0, stx_nlink word 4

    def linked(fd: int) -> bool:
        if statx(fd, b"", _AT_EMPTY_PATH, _STATX_NLINK, buf) == 0 and words[0] & _STATX_NLINK:
            return words[4] != 0
        return _linked_by_fstat(fd)

    return linked


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def kernel_flocks(text: str | None = None) -> dict[tuple[int, int, int], int] | None:
    """Exclusive ``flock`` locks the kernel knows of: ``(major, minor, inode)`` → pid; None without /proc/locks.

    Lines look like ``1: FLOCK  ADVISORY  WRITE 4242 fe:00:2146427 0 EOF``; waiters
    (``1: -> FLOCK ...``) are skipped.
    """
    if text is None:
        text = _read("/proc/locks")
        if text is None:
            return None
    held: dict[tuple[int, int, int], int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK" or parts[3] != "WRITE":
            continue
        try:
            major, minor, inode = parts[5].split(":")
            held[(int(major, 16), int(minor, 16), int(inode))] = int(parts[4])
        except ValueError:
            continue
    return held


def lock_holders(
    lock_dir: str | os.PathLike[str] | None = None, *, include_released: bool = False
) -> list[dict[str, Any]]:
    """The file locks of *lock_dir* and who holds them, for ``reliable status``.

    Never takes a lock (so it cannot make a job skip). On Linux the kernel's table of
    locks (``/proc/locks``) says which lock files are locked and by which pid; elsewhere a
    file counts as held when its metadata names a process that is alive on this host,
    which can also be a process that has released it since.

    Args:
        lock_dir: The directory; None means the configured or default one.
        include_released: Also list lock files that nobody holds now, with their last holder.

    Returns:
        One dict per lock file, sorted by name and slot: ``name``, ``slot``, ``token``, ``pid``,
        ``host``, ``since`` (epoch seconds), ``held`` (bool) and ``path``. For a held lock the
        metadata is the holder's; for a free one, the last holder's.

    .. versionadded:: 0.1.0
    """
    from ._config import lock_settings
    from ._file_lock import host_name

    directory = os.fspath(lock_dir) if lock_dir is not None else (lock_settings()[0] or default_lock_dir())
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".lock"))
    except OSError:
        return []
    kernel = kernel_flocks()
    found: list[dict[str, Any]] = []
    for file_name in names:
        path = os.path.join(directory, file_name)
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = json.loads(f.read(65536) or b"{}")
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            data = {}
        holder = holder_from_value(file_name[: -len(".lock")], data).as_dict()
        del holder["expires_at"]
        if kernel is not None:
            locker = kernel.get((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
            held = locker is not None
            if held and holder["pid"] is None:
                holder["pid"] = locker
        else:
            held = holder["pid"] is not None and (holder["host"] != host_name() or _alive(holder["pid"]))
        if held or include_released:
            found.append({**holder, "held": held, "path": path})
    found.sort(key=lambda d: (d["name"], d["slot"] if d["slot"] is not None else -1))
    return found
