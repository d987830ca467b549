"""`reliable.idempotent` across real processes sharing a store: races, SIGKILL and stale holders."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import reliable
from backends import Backend
from reliable.testing import FakeClock, installed

pytestmark = pytest.mark.processes

PROCESSES = 8
KEYS = 1000
SERVER_KEYS = 300
"""Redis and PostgreSQL run the same race over fewer keys: every call is a network round trip to a server
sharing the test machine's two cores, and 8 x 1,000 of them take ~10 s there."""
REAL_TIMEOUT = 60.0
_spawn = multiprocessing.get_context("spawn")


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def _effects(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + REAL_TIMEOUT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.005)


def _race_worker(url: str, effects: str, seed: int, count: int, barrier: Any) -> None:
    """Call the idempotent function for every key, in an order that depends on *seed*."""
    store = reliable.stores.open(url)

    @reliable.idempotent(store=store, key=lambda key: key, name="race", lease="30s")
    def effect(key: str) -> str:
        _append(effects, key)
        return key

    keys = [f"k{i}" for i in range(count)]
    random.Random(seed).shuffle(keys)
    barrier.wait(REAL_TIMEOUT)
    for key in keys:
        assert key == effect(key)
    store.close()


def test_eight_processes_thousand_keys_each_effect_once(shared_backend: Backend, tmp_path: Path) -> None:
    """8 processes call one idempotent function over the same 1,000 keys: every key's effect happens exactly once."""
    assert shared_backend.url is not None
    count = KEYS if shared_backend.name == "sqlite" else SERVER_KEYS
    url = shared_backend.url(tmp_path)
    effects = tmp_path / "effects.log"
    barrier = _spawn.Barrier(PROCESSES)
    # Two processes share each order, so they collide on nearly every key; the others interleave at random.
    workers = [
        _spawn.Process(target=_race_worker, args=(url, str(effects), i // 2, count, barrier)) for i in range(PROCESSES)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(REAL_TIMEOUT)

    lines = _effects(effects)
    assert [0] * PROCESSES == [w.exitcode for w in workers]
    assert sorted(f"k{i}" for i in range(count)) == sorted(lines)


def _kill_worker(url: str, effects: str, inside: str) -> None:
    """Claim the key, say so, then hang before doing the effect (the parent kills this process)."""
    store = reliable.stores.open(url)

    @reliable.idempotent(store=store, key=lambda key: key, name="killed", lease="30s")
    def effect(key: str) -> str:
        Path(inside).write_text(str(os.getpid()))
        time.sleep(REAL_TIMEOUT)
        _append(effects, f"child {key}")
        return "child"

    effect("job")


def test_sigkilled_holder_is_taken_over_after_the_lease(shared_backend: Backend, tmp_path: Path) -> None:
    """SIGKILL a process inside the function: its claim holds until the lease ends; then the next call works once."""
    assert shared_backend.url is not None
    url = shared_backend.url(tmp_path)
    effects, inside = tmp_path / "effects.log", tmp_path / "inside"
    child = _spawn.Process(target=_kill_worker, args=(url, str(effects), str(inside)))
    child.start()
    _wait_for(inside)
    os.kill(child.pid or 0, signal.SIGKILL)
    child.join(REAL_TIMEOUT)
    store = reliable.stores.open(url)
    runs: list[str] = []

    def effect(key: str) -> str:
        runs.append(key)
        _append(str(effects), f"parent {key}")
        return "parent"

    with installed(FakeClock()) as clock:
        assert isinstance(clock, FakeClock)
        with pytest.raises(reliable.InProgressError):
            reliable.idempotent(store=store, key=lambda key: key, name="killed", on_in_progress="raise")(effect)("job")
        clock.advance(31)
        again = reliable.idempotent(store=store, key=lambda key: key, name="killed")(effect)
        results = [again("job"), again("job")]
    store.close()

    assert -signal.SIGKILL == child.exitcode
    assert (["parent", "parent"], ["job"], ["parent job"]) == (results, runs, _effects(effects))


def _stale_worker(url: str, inside: str, go: str, outcome: str) -> None:
    """Hold the key until told to go, then try to complete and report what happened."""
    store = reliable.stores.open(url)

    @reliable.idempotent(store=store, key=lambda key: key, name="stale", lease="30s")
    def effect(key: str) -> str:
        Path(inside).write_text("in")
        deadline = time.monotonic() + REAL_TIMEOUT
        while not Path(go).exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        return "child"

    try:
        result = effect("job")
    except reliable.LeaseLostError as exc:
        Path(outcome).write_text(f"LeaseLostError {exc.result}")
    else:
        Path(outcome).write_text(f"returned {result}")


def test_other_process_polls_takes_over_and_the_stale_holder_loses(shared_backend: Backend, tmp_path: Path) -> None:
    """A caller in another process polls (on its clock) until the holder's lease ends, takes over and stores its result;
    the stale holder then gets LeaseLostError and the record keeps the new result."""
    assert shared_backend.url is not None
    url = shared_backend.url(tmp_path)
    inside, go, outcome = tmp_path / "inside", tmp_path / "go", tmp_path / "outcome"
    child = _spawn.Process(target=_stale_worker, args=(url, str(inside), str(go), str(outcome)))
    child.start()
    _wait_for(inside)
    store = reliable.stores.open(url)

    with installed(FakeClock()) as clock:
        assert isinstance(clock, FakeClock)
        parent = reliable.idempotent(store=store, key=lambda key: key, name="stale")(lambda key: "parent")
        result = parent("job")
        waited = clock.advanced
    go.write_text("go")
    child.join(REAL_TIMEOUT)
    replayed = parent("job")
    store.close()

    assert ("parent", "parent", 0) == (result, replayed, child.exitcode)
    assert 30 <= waited <= 32
    assert "LeaseLostError child" == outcome.read_text()
