"""single_instance across real processes: races, SIGKILL, SIGSTOP past the TTL, and the limit, bounded in time."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import reliable
from backends import Backend
from reliable.testing import FakeClock, installed
from test_single_instance_support import (
    REAL_TIMEOUT,
    hold_child,
    hold_forever_child,
    limit_child,
    max_concurrency,
    race_child,
    read_runs,
)

pytestmark = pytest.mark.processes

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(params=["file", "store"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """("file", lock directory), or ("store", URL of a SQLite store several processes share)."""
    if request.param == "file":
        yield "file", str(tmp_path / "locks")
    else:
        yield "store", f"sqlite:///{tmp_path / 'state.db'}"


def start(target: Any, *args: Any) -> Any:
    process = SPAWN.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def finish(*processes: Any) -> None:
    for process in processes:
        process.join(REAL_TIMEOUT * 3)
        if process.is_alive():
            process.kill()
            process.join(REAL_TIMEOUT)
            pytest.fail(f"child {process.pid} did not finish in time")
    assert [0] * len(processes) == [p.exitcode for p in processes]


def acquire_here(kind: str, location: str, **options: Any) -> Any:
    if kind == "file":
        return reliable.single_instance("job", lock_dir=location, **options).acquire()
    return reliable.single_instance("job", store=location, **options).acquire()


def test_two_processes_starting_together_never_overlap(where: tuple[str, str], tmp_path: Path) -> None:
    """Two processes start the same job at the same moment 50 times (on_conflict='wait'): both run every time,
    their runs never overlap, and the tokens grow run after run."""
    kind, location = where
    log = tmp_path / "runs.log"
    barrier = SPAWN.Barrier(2)
    children = [start(race_child, kind, location, str(log), 50, barrier, {"on_conflict": "wait"}) for _ in range(2)]
    finish(*children)

    runs = read_runs(log)
    assert 200 == len(runs)
    assert 1 == max_concurrency(runs)
    pairs = list(zip(runs[::2], runs[1::2], strict=True))
    assert all(s[0] == "S" and e[0] == "E" and s[1:] == e[1:] for s, e in pairs)
    tokens = [s[3] for s, _ in pairs]
    assert sorted(tokens) == tokens
    assert len(set(tokens)) == len(tokens)


def test_sigkill_of_a_file_lock_holder_frees_it_at_once(tmp_path: Path) -> None:
    """The OS frees a killed holder's file lock: the next process acquires at once, with a larger token."""
    lock_dir = str(tmp_path / "locks")
    ours, theirs = SPAWN.Pipe()
    child = start(hold_forever_child, lock_dir, theirs)
    assert ours.poll(REAL_TIMEOUT * 3)
    their_token = ours.recv()
    with pytest.raises(reliable.AlreadyRunningError):
        acquire_here("file", lock_dir, on_conflict="raise")

    os.kill(child.pid, signal.SIGKILL)
    child.join(REAL_TIMEOUT)
    lease = acquire_here("file", lock_dir, on_conflict="raise")

    assert -signal.SIGKILL == child.exitcode
    assert their_token + 1 == lease.token
    lease.release()


def test_sigkill_of_a_lease_holder_frees_it_after_the_ttl(shared_backend: Backend, tmp_path: Path) -> None:
    """A killed holder's store lease stays until its TTL ends (moved on with a fake clock here), then is taken."""
    assert shared_backend.url is not None
    url = shared_backend.url(tmp_path)
    ours, theirs = SPAWN.Pipe()
    child = start(hold_child, "store", url, 30.0, theirs)
    assert ours.poll(REAL_TIMEOUT * 3)
    _, their_token = ours.recv()
    os.kill(child.pid, signal.SIGKILL)
    child.join(REAL_TIMEOUT)

    with installed(FakeClock()) as clock:
        with pytest.raises(reliable.AlreadyRunningError):
            acquire_here("store", url, on_conflict="raise")
        clock.advance(31)
        lease = acquire_here("store", url, on_conflict="raise")
        lease.release()

    assert lease.token > their_token


def test_holder_stopped_past_its_ttl_is_replaced_and_finds_out(shared_backend: Backend, tmp_path: Path) -> None:
    """A holder SIGSTOPped past its TTL is replaced by one with a larger token; after SIGCONT its check() raises
    LeaseLostError."""
    assert shared_backend.url is not None
    url = shared_backend.url(tmp_path)
    ours, theirs = SPAWN.Pipe()
    child = start(hold_child, "store", url, 5.0, theirs)
    try:
        assert ours.poll(REAL_TIMEOUT * 3)
        _, their_token = ours.recv()
        os.kill(child.pid, signal.SIGSTOP)
        with installed(FakeClock()) as clock:
            clock.advance(6)
            lease = acquire_here("store", url, on_conflict="raise")
            os.kill(child.pid, signal.SIGCONT)
            ours.send("check")
            assert ours.poll(REAL_TIMEOUT)
            outcome, message = ours.recv()
            lease.release()
        ours.send("stop")
    finally:
        os.kill(child.pid, signal.SIGCONT)
    finish(child)

    assert lease.token > their_token
    assert "lost" == outcome, message


def test_limit_three_never_admits_a_fourth(where: tuple[str, str], tmp_path: Path) -> None:
    """Five processes share limit=3: at most three runs are ever inside, and three are at some point."""
    kind, location = where
    log = tmp_path / "runs.log"
    barrier = SPAWN.Barrier(5)
    children = [start(limit_child, kind, location, str(log), 4, barrier) for _ in range(5)]
    finish(*children)

    runs = read_runs(log)
    assert 40 == len(runs)
    assert 3 == max_concurrency(runs)
