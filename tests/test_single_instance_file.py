"""The file backend of `single_instance`: lock files, descriptors, fork, slots, network filesystems, lock_holders."""

# ruff: noqa: F811  (the events fixture is imported so that it, not conftest's plain list, is the one these tests get)

from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import reliable
from reliable import _config, _file_lock, _lock_dir
from reliable._lock_dir import file_stem, kernel_flocks, lock_holders, mount_fs_type
from test_single_instance_support import (
    REAL_TIMEOUT,
    Events,
    Holder,
    events,  # noqa: F401
)

pytest_plugins = ["test_single_instance_support"]
"""Fixtures: events (every single_instance event)."""


@pytest.fixture(autouse=True)
def lock_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "locks"
    with _config.configured(lock_dir=directory):
        yield directory


def test_lock_file_stays_and_records_the_last_holder(lock_dir: Path) -> None:
    """Release never deletes the lock file; it keeps the last holder's metadata and token."""
    with reliable.single_instance("job") as lease:
        during = json.loads((lock_dir / "job.lock").read_text())

    after = json.loads((lock_dir / "job.lock").read_text())
    assert during == after
    assert {"token": 1, "pid": os.getpid(), "slot": 0, "name": "job", "host": lease.host} == {
        k: after[k] for k in ("token", "pid", "slot", "name", "host")
    }
    assert lease.since == pytest.approx(after["since"], abs=1e-5)


def test_descriptor_is_close_on_exec(lock_dir: Path) -> None:
    """The locked descriptor is close-on-exec: a program started meanwhile (even with close_fds=False) lacks it."""
    code = "import os, sys\ntry:\n    os.fstat(int(sys.argv[1]))\nexcept OSError:\n    print('closed')"
    with reliable.single_instance("job") as lease:
        fd = lease._fd  # type: ignore[attr-defined]
        flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        child = subprocess.run(
            [sys.executable, "-c", code, str(fd)], close_fds=False, capture_output=True, text=True, timeout=30
        )

    assert flags & fcntl.FD_CLOEXEC
    assert not os.get_inheritable(fd)
    assert "closed" == child.stdout.strip()


def test_another_descriptor_sees_the_lock(lock_dir: Path) -> None:
    """While held, another open file description of the lock file cannot flock it; after release it can."""
    probe = os.open(lock_dir.parent / "probe", os.O_CREAT | os.O_RDWR)
    os.close(probe)
    with reliable.single_instance("job"):
        fd = os.open(lock_dir / "job.lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


def test_holder_in_another_process_without_metadata(lock_dir: Path) -> None:
    """A lock file locked by a program that wrote no metadata still blocks us; the message says so."""
    lock_dir.mkdir()
    fd = os.open(lock_dir / "job.lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(reliable.AlreadyRunningError, match="details are not written yet"):
            reliable.single_instance("job", on_conflict="raise").acquire()
    finally:
        os.close(fd)


def test_a_lock_file_deleted_while_idle_is_not_trusted(lock_dir: Path) -> None:
    """If someone deletes the lock file while this process keeps it open, the next acquisition locks the new file."""
    lock = reliable.single_instance("job")
    with lock:
        pass
    (lock_dir / "job.lock").unlink()

    with lock as lease:
        same = os.fstat(lease._fd).st_ino == os.stat(lock_dir / "job.lock").st_ino  # type: ignore[attr-defined]

    assert same


def test_a_lock_file_deleted_while_held_loses_the_lease(lock_dir: Path, events: Events) -> None:
    """Deleting the lock file under a holder makes its check() raise: another process could lock a new file."""
    with reliable.single_instance("job") as lease:
        (lock_dir / "job.lock").unlink()
        with pytest.raises(reliable.LeaseLostError, match="deleted"):
            lease.check()

    assert 1 == len(events.named("lost"))


@pytest.mark.parametrize("statx", ["libc", "missing", "failing", "without-nlink"])
def test_link_probe_tells_whether_an_open_file_was_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statx: str
) -> None:
    """The probe behind the deleted-lock-file check: statx where libc has it, else (or when it fails) fstat."""
    fakes: dict[str, Any] = {"missing": None, "failing": lambda *args: -1, "without-nlink": lambda *args: 0}
    if statx in fakes:
        monkeypatch.setattr(_lock_dir, "_statx", [fakes[statx]])
    linked = _lock_dir.link_probe()
    path = tmp_path / "probe.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        before = linked(fd)
        path.unlink()
        after = linked(fd)
    finally:
        os.close(fd)

    assert (True, False) == (before, after)


class _FakeLibc:
    def __init__(self, result: int | None) -> None:
        if result is not None:
            self.statx = lambda *args: result


@pytest.mark.parametrize(("platform", "result"), [("darwin", 0), ("linux", None), ("linux", -1), ("linux", 0)])
def test_statx_is_used_only_where_it_works(monkeypatch: pytest.MonkeyPatch, platform: str, result: int | None) -> None:
    """libc's statx is looked up on Linux only, and kept only if a first call succeeds."""
    import ctypes

    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(ctypes, "CDLL", lambda name: _FakeLibc(result))

    found = _lock_dir._find_statx()

    assert (platform == "linux" and result == 0) == (found is not None)


def test_symlinked_lock_file_is_refused(lock_dir: Path, tmp_path: Path) -> None:
    """A symlink planted at the lock path is not followed (O_NOFOLLOW)."""
    lock_dir.mkdir()
    (lock_dir / "job.lock").symlink_to(tmp_path / "elsewhere")

    with pytest.raises(reliable.LockError, match="cannot open lock file"):
        reliable.single_instance("job").acquire()

    assert not (tmp_path / "elsewhere").exists()


def test_lock_dir_that_cannot_be_created(tmp_path: Path) -> None:
    """A lock directory that cannot be created raises LockError naming it."""
    (tmp_path / "file").write_text("")

    with pytest.raises(reliable.LockError, match="cannot create lock directory"):
        reliable.single_instance("job", lock_dir=tmp_path / "file" / "locks").acquire()


def test_odd_names_get_safe_distinct_files() -> None:
    """Names that are not plain file names map to readable, distinct, safe file names."""
    stems = [file_stem(n) for n in ("nightly", "a/b", "a:b", "../x", "a b")]

    assert "nightly" == stems[0]
    assert len(set(stems)) == len(stems)
    assert all("/" not in s and not s.startswith(".") for s in stems)


def test_limit_is_a_semaphore_of_lock_files(lock_dir: Path) -> None:
    """limit=3: three holders hold the three slot files, a fourth skips, and tokens come from one counter."""
    lock = reliable.single_instance("job", limit=3)
    with Holder(lock) as a, Holder(lock) as b, Holder(lock) as c:
        fourth = lock.acquire()
        slots = sorted(h.lease.slot for h in (a, b, c))
        tokens = sorted(h.lease.token for h in (a, b, c))

    assert fourth is reliable.SKIPPED
    assert ([0, 1, 2], [1, 2, 3]) == (slots, tokens)
    assert {"job.lock", "job.1.lock", "job.2.lock", "job.token"} == {p.name for p in lock_dir.iterdir()}


def test_slots_locked_by_other_processes_are_skipped(lock_dir: Path) -> None:
    """limit=2 with both slot files locked through other open file descriptions (as other processes would): skip."""
    lock = reliable.single_instance("job", limit=2)
    with lock:
        pass
    fds = [os.open(lock_dir / name, os.O_RDWR | os.O_CREAT, 0o644) for name in ("job.lock", "job.1.lock")]
    try:
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = lock.acquire()
    finally:
        for fd in fds:
            os.close(fd)

    with lock as lease:
        slot = lease.slot

    assert result is reliable.SKIPPED
    assert 0 == slot


@pytest.mark.parametrize(("descriptor", "limit"), [("new", 1), ("kept", 1), ("new", 2)])
def test_a_failed_holder_write_frees_the_lock(
    lock_dir: Path, monkeypatch: pytest.MonkeyPatch, descriptor: str, limit: int
) -> None:
    """If writing the holder record fails, the error propagates and neither the file lock nor the slot stays taken."""
    lock = reliable.single_instance("job", on_conflict="raise", limit=limit)
    if descriptor == "kept":
        with lock:
            pass

    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_file_lock, "_pwrite", full)
    with pytest.raises(OSError, match="No space"):
        lock.acquire()
    monkeypatch.undo()
    fd = os.open(lock_dir / "job.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)

    with lock as lease:
        token, slot = lease.token, lease.slot

    # The failed try wrote no holder record; with limit=2 it had already taken a token from the shared
    # counter, which is skipped (tokens only have to grow).
    assert (1 if (descriptor, limit) == ("new", 1) else 2, 0) == (token, slot)


def test_a_shorter_holder_record_replaces_a_longer_one(lock_dir: Path) -> None:
    """The lock file holds exactly the new holder's record, even after a longer one: it stays one JSON document."""
    lock_dir.mkdir()
    (lock_dir / "job.lock").write_text(json.dumps({"token": 41, "pid": 1, "host": "h" * 300}) + "\n")

    with reliable.single_instance("job") as lease:
        text = (lock_dir / "job.lock").read_text()

    assert (42, os.getpid()) == (lease.token, json.loads(text)["pid"])
    assert text.endswith("}\n")
    assert 1 == text.count("\n")


def test_fork_child_does_not_hold_or_free_the_parents_lock(lock_dir: Path) -> None:
    """A forked child holds nothing: its inherited lease fails check(), its release keeps the parent's lock,
    and it can take the lock only once the parent let go."""
    read, write = os.pipe()
    with reliable.single_instance("job") as lease:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            report = {}
            try:
                lease.check()
                report["check"] = "held"
            except reliable.LeaseLostError:
                report["check"] = "lost"
            lease.release()
            report["child_can_lock"] = reliable.single_instance("job").acquire() is not reliable.SKIPPED
            os.write(write, json.dumps(report).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            report = json.loads(pipe.read())
        os.waitpid(pid, 0)
        fd = os.open(lock_dir / "job.lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)

    assert {"check": "lost", "child_can_lock": False} == report


def test_fork_child_may_take_the_lock_the_parent_released(lock_dir: Path) -> None:
    """A child forked after the parent released takes the lock afresh, with a larger token."""
    with reliable.single_instance("job") as lease:
        pass
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        with reliable.single_instance("job") as child_lease:
            os.write(write, str(child_lease.token if child_lease else -1).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        token = int(pipe.read())
    os.waitpid(pid, 0)

    assert lease.token + 1 == token


# -- network filesystems ------------------------------------------------------------------------

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /mnt/shared rw,relatime - nfs4 server:/export rw,vers=4.2
41 40 0:51 / /mnt/shared/local rw,relatime - ext4 /dev/vdb rw
42 27 0:52 / /mnt/my\\040drive rw,relatime - cifs //server/share rw
43 27 0:53 / /home/me/remote rw - fuse.sshfs me@host:/ rw
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/var/lib/x", "ext4"),
        ("/mnt/shared/locks", "nfs4"),
        ("/mnt/shared/local/locks", "ext4"),
        ("/mnt/my drive/locks", "cifs"),
        ("/home/me/remote/locks", "fuse.sshfs"),
        ("/mnt/sharedother", "ext4"),
    ],
)
def test_mount_table_gives_the_filesystem(path: str, expected: str) -> None:
    """The longest mount point containing the path decides its filesystem type (escaped spaces understood)."""
    assert expected == mount_fs_type(path, mountinfo=MOUNTINFO)


def test_mounts_fallback() -> None:
    """Without mountinfo, /proc/mounts lines give the type."""
    mounts = "/dev/vda / ext4 rw 0 0\nserver:/x /mnt/nfs nfs rw 0 0\n"

    assert "nfs" == mount_fs_type("/mnt/nfs/locks", mountinfo="", mounts=mounts)


@pytest.fixture
def on_nfs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend every lock directory is on NFS."""
    monkeypatch.setattr(_lock_dir, "mount_fs_type", lambda path, **kw: "nfs4")
    monkeypatch.setattr(_lock_dir, "_prepared", {})


@pytest.mark.usefixtures("on_nfs")
def test_network_lock_dir_warns_by_default() -> None:
    """A lock directory on NFS warns that flock may not exclude other hosts, and still locks."""
    with pytest.warns(RuntimeWarning, match="nfs4 filesystem"):
        with reliable.single_instance("job") as lease:
            pass

    assert isinstance(lease, reliable.Lease)


@pytest.mark.usefixtures("on_nfs")
def test_network_lock_dir_can_be_refused_or_allowed() -> None:
    """configure(lock_network_fs='refuse') raises ConfigError; 'allow' is silent."""
    with _config.configured(lock_network_fs="refuse"):
        with pytest.raises(reliable.ConfigError, match="lock_network_fs"):
            reliable.single_instance("job").acquire()
    with _config.configured(lock_network_fs="allow"), warnings.catch_warnings():
        warnings.simplefilter("error")
        with reliable.single_instance("job"):
            pass


# -- lock_holders ---------------------------------------------------------------------------------

PROC_LOCKS = """\
1: FLOCK  ADVISORY  WRITE 4242 fe:00:2146427 0 EOF
1: -> FLOCK  ADVISORY  WRITE 4343 fe:00:2146427 0 EOF
2: POSIX  ADVISORY  READ 30048 fe:00:2149829 128 128
3: FLOCK  ADVISORY  READ 17 00:1b:82 0 EOF
"""


def test_kernel_flocks_reads_exclusive_holders() -> None:
    """Only exclusive flock holders are read from /proc/locks, not waiters, POSIX or shared locks."""
    assert {(0xFE, 0, 2146427): 4242} == kernel_flocks(PROC_LOCKS)


def test_lock_holders_lists_held_locks(lock_dir: Path) -> None:
    """lock_holders() lists the held locks with their holder; include_released adds the free ones."""
    with reliable.single_instance("free"):
        pass
    with reliable.single_instance("busy") as lease:
        held = lock_holders(lock_dir)
        everything = lock_holders(lock_dir, include_released=True)

    assert [("busy", os.getpid(), lease.token, True)] == [(h["name"], h["pid"], h["token"], h["held"]) for h in held]
    assert [("busy", True), ("free", False)] == [(h["name"], h["held"]) for h in everything]


def test_lock_holders_without_proc_locks(lock_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without /proc/locks, a lock counts as held while the process its metadata names is alive."""
    monkeypatch.setattr(_lock_dir, "kernel_flocks", lambda text=None: None)
    lock_dir.mkdir()
    (lock_dir / "gone.lock").write_text(json.dumps({"token": 3, "pid": 2**22 + 7, "host": _file_lock.host_name()}))
    with reliable.single_instance("here"):
        names = [h["name"] for h in lock_holders(lock_dir)]

    assert ["here"] == names


def test_lock_holders_of_a_missing_dir(tmp_path: Path) -> None:
    """A lock directory that does not exist has no holders."""
    assert [] == lock_holders(tmp_path / "nowhere")


def test_threads_racing_for_one_lock_never_overlap(lock_dir: Path) -> None:
    """Many threads taking one lock in a loop: at most one is ever inside."""
    inside: list[int] = []
    worst: list[int] = []
    lock = reliable.single_instance("job", on_conflict="wait")
    guard = threading.Lock()

    def run() -> None:
        for _ in range(50):
            with lock:
                with guard:
                    inside.append(1)
                    worst.append(len(inside))
                with guard:
                    inside.pop()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(REAL_TIMEOUT)

    assert 1 == max(worst)
    assert 200 == len(worst)


def test_file_lease_renew_only_checks(lock_dir: Path) -> None:
    """A file lock needs no renewal: renew() and arenew() only check it."""
    import asyncio

    with reliable.single_instance("job") as lease:
        lease.renew()
        asyncio.run(lease.arenew())
        held: Any = lease.lost

    assert held is False
