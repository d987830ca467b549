"""What the store contract checks share: the store factory and check types, `SLACK`, and assertions.

The assertions work under ``python -O`` and name what was checked; `_fresh` closes the store
a check makes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from ._fake_clock import FakeClock

StoreFactory = Callable[[], Any]
"""Returns a new, empty store each call, whose time follows the library clock."""
Check = Callable[[StoreFactory, FakeClock], None]
AsyncCheck = Callable[[StoreFactory, FakeClock], Coroutine[Any, Any, None]]

SLACK = 1.0
"""Seconds a store's ``now()`` may differ from the fake clock (stores with server time: Redis, PostgreSQL)."""


# -- assertions that work under ``python -O`` and name what was checked ---------------


def _eq(expected: object, actual: object, what: str) -> None:
    if expected != actual:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def _true(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def _raises(error: type[BaseException], call: Callable[..., object], *args: Any, what: str, **kwargs: Any) -> None:
    try:
        result = call(*args, **kwargs)
    except error:
        return
    raise AssertionError(f"{what}: expected {error.__name__}, got a result: {result!r}")


@contextmanager
def _fresh(make_store: StoreFactory) -> Iterator[Any]:
    store = make_store()
    try:
        yield store
    finally:
        store.close()
