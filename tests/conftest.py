"""Fixtures shared by the whole suite: the `store` backends and the no-real-sleep guard."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends import BACKENDS, REQUIRE_SERVICES, Backend
from reliable._internal import _clock
from reliable.stores import Store

MAX_REAL_SLEEP = 0.05
"""No test may sleep for real longer than this to wait out a backoff or a lease (issue 7)."""


def _backend(name: str) -> Backend:
    backend = BACKENDS[name]
    reason = backend.unavailable()
    if reason is not None:
        if REQUIRE_SERVICES:
            pytest.fail(f"{name} backend unreachable and RELIABLE_REQUIRE_SERVICES=1: {reason}")
        pytest.skip(f"{name} backend unreachable: {reason}")
    return backend


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every store backend, skipped with a reason (or failed in CI) when its server is down."""
    return _backend(request.param)


@pytest.fixture(params=[name for name, b in BACKENDS.items() if b.url is not None])
def shared_backend(request: pytest.FixtureRequest) -> Backend:
    """Every backend that several processes can share (not memory)."""
    return _backend(request.param)


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Iterator[Store]:
    """A fresh, isolated store of every backend."""
    made = backend.make(tmp_path)
    yield made
    made.close()


@pytest.fixture(autouse=True)
def _isolated_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test gets its own default store and lock directory, never the developer's or another run's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg-run"))
    for name in ("STORE", "LOCK_DIR", "CONFIG", "ALERT_WEBHOOK", "ALERT_SLACK"):
        monkeypatch.delenv(f"RELIABLE_{name}", raising=False)


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that sleeps for real longer than MAX_REAL_SLEEP through the system clock or time.sleep."""
    real_sleep = time.sleep

    def guarded_sleep(seconds: float) -> None:
        if seconds > MAX_REAL_SLEEP:
            raise AssertionError(
                f"test slept {seconds}s for real; install a FakeClock (reliable_clock fixture) instead"
            )
        real_sleep(seconds)

    async def guarded_asleep(self: object, seconds: float) -> None:
        if seconds > MAX_REAL_SLEEP:
            raise AssertionError(
                f"test slept {seconds}s for real; install a FakeClock (reliable_clock fixture) instead"
            )
        import asyncio

        await asyncio.sleep(seconds)

    monkeypatch.setattr(time, "sleep", guarded_sleep)
    monkeypatch.setattr(_clock.SystemClock, "sleep", lambda self, s: guarded_sleep(s) if s > 0 else None)
    monkeypatch.setattr(_clock.SystemClock, "asleep", guarded_asleep)
