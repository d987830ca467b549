"""Helpers shared by the idempotency tests (this module holds no tests)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import reliable
from reliable._internal import _telemetry
from reliable.testing import FakeClock, installed

MODES = ["sync", "async"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each behaviour runs with a sync and with an async decorated function."""
    return str(request.param)


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """A fake library clock for the test."""
    with installed(FakeClock()) as fake:
        assert isinstance(fake, FakeClock)
        yield fake


@pytest.fixture
def events() -> Iterator[list[_telemetry.Event]]:
    """Every `reliable.idempotent.*` event emitted during the test, from any thread."""
    seen: list[_telemetry.Event] = []

    def listener(event: _telemetry.Event) -> None:
        if event.primitive == "idempotent":
            seen.append(event)

    _telemetry.add_listener(listener)
    yield seen
    _telemetry.remove_listener(listener)


def names(events: list[_telemetry.Event]) -> list[str]:
    return [e.event for e in events]


def idem(mode: str, body: Callable[..., Any], **options: Any) -> Callable[..., Any]:
    """*body* decorated with ``reliable.idempotent(**options)`` as a sync or async function, called synchronously."""
    if mode == "sync":
        decorated: Callable[..., Any] = reliable.idempotent(**options)(body)
        return decorated

    @functools.wraps(body)
    async def as_async(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return body(*args, **kwargs)

    adecorated = reliable.idempotent(**options)(as_async)
    loop = asyncio.new_event_loop()
    _loops.append(loop)
    return lambda *args, **kwargs: loop.run_until_complete(adecorated(*args, **kwargs))


_loops: list[asyncio.AbstractEventLoop] = []


def run(coro: Any) -> Any:
    """Run *coro* on this test's event loop (one loop per test, like one long-lived application).

    A new loop per call would be realistic too, but PostgresStore's per-loop pools hang
    ``asyncio.run`` on exit (reported to the lead); the idempotency tests are not about that.
    """
    if not _loops:
        _loops.append(asyncio.new_event_loop())
    return _loops[0].run_until_complete(coro)


@pytest.fixture(autouse=True)
def _close_loops() -> Iterator[None]:
    """Close the event loops `idem` made (one per decorated function, reused for its calls)."""
    yield
    while _loops:
        _loops.pop().close()


class Counting:
    """A store proxy that records the name of every store operation called."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.ops: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name.startswith("_") or not callable(attr):
            return attr

        @functools.wraps(attr)
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.ops.append(name.removeprefix("a") if name.startswith("a") and name != "aclose" else name)
            return attr(*args, **kwargs)

        return counted
