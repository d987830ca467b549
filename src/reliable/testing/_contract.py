"""The store conformance suite: the executable definition of `reliable.stores.Store`.

Each check is a plain function taking a store factory and the installed `FakeClock`.
Checks in `CHECKS` (every ``check_*`` of `_contract_writes` and `_contract_inputs`) run
twice: on the blocking methods, and on the ``a``-twins (through `_Awaited`, a blocking view
of the async methods); `THREAD_CHECKS` run blocking only and `ASYNC_CHECKS` are coroutines
(both in `_contract_races`). `cases()` lists them all and `check_store` runs them, the way
trio's ``check_one_way_stream`` ships its stream contract. The multi-process race
(`race_processes`, in `_contract_processes`) needs a store URL, so it is kept out of `check_store`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._errors import ConfigError
from .._internal._clock import installed
from . import _contract_inputs, _contract_writes
from ._awaited import _Awaited as _Awaited  # re-exported: tests view the async twins through it
from ._contract_base import SLACK as SLACK  # re-exported: tests/test_store_model.py
from ._contract_base import AsyncCheck, Check, StoreFactory
from ._contract_processes import race_processes
from ._contract_races import (
    acheck_task_race,
    check_thread_race_compare_and_set,
    check_thread_race_put_if_absent_and_incr,
)
from ._fake_clock import FakeClock

__all__ = ["ASYNC_CHECKS", "CHECKS", "THREAD_CHECKS", "Case", "cases", "check_store", "race_processes"]

Mode = Literal["sync", "async"]


CHECKS: tuple[Check, ...] = tuple(
    check
    for name, check in sorted(
        (item for module in (_contract_writes, _contract_inputs) for item in vars(module).items()),
        key=lambda item: item[0],
    )
    if name.startswith("check_") and callable(check)
)
"""Checks that run on the blocking methods and again on the async twins."""
THREAD_CHECKS: tuple[Check, ...] = (check_thread_race_compare_and_set, check_thread_race_put_if_absent_and_incr)
"""Checks that race threads on one store (blocking methods only)."""
ASYNC_CHECKS: tuple[AsyncCheck, ...] = (acheck_task_race,)
"""Coroutine checks that race tasks on one event loop."""


@dataclass(frozen=True)
class Case:
    """One check in one mode; `run` runs it under a fresh, installed `FakeClock`."""

    check: Callable[[StoreFactory, FakeClock], Any]
    mode: Mode

    @property
    def id(self) -> str:
        return f"{self.check.__name__.removeprefix('check_').removeprefix('acheck_')}-{self.mode}"

    def run(self, make_store: StoreFactory) -> None:
        clock = FakeClock()
        with installed(clock):
            if asyncio.iscoroutinefunction(self.check):
                asyncio.run(self.check(make_store, clock))
            elif self.mode == "async":
                self.check(lambda: _Awaited(make_store()), clock)
            else:
                self.check(make_store, clock)


def cases(modes: Sequence[Mode] = ("sync", "async")) -> list[Case]:
    """Every check of the contract, in each of *modes* it applies to."""
    out = [Case(check, mode) for mode in modes for check in CHECKS]
    if "sync" in modes:
        out += [Case(check, "sync") for check in THREAD_CHECKS]
    if "async" in modes:
        out += [Case(check, "async") for check in ASYNC_CHECKS]
    return out


def check_store(make_store: StoreFactory, *, modes: Sequence[Mode] = ("sync", "async")) -> None:
    """Run the store conformance suite against the stores *make_store* returns.

    Every check runs under a fresh `FakeClock` installed as the library clock, so the
    store must read its time from the library clock (or, for a server-side clock, add
    `reliable._internal._clock.skew`). Each check closes the stores it makes.

    >>> from reliable.stores.memory import MemoryStore
    >>> check_store(MemoryStore)

    Args:
        make_store: Returns a new, empty store at each call.
        modes: ``"sync"`` checks the blocking methods (and races threads), ``"async"``
            the ``a``-twins (and races tasks). Drop ``"async"`` for a blocking-only store.

    Raises:
        ConfigError: *modes* names something else.
        AssertionError: a check failed; the message names the check, the chained
            exception says what differed.

    .. versionadded:: 0.1.0
    """
    unknown = set(modes) - {"sync", "async"}
    if unknown or not modes:
        msg = f"modes={modes!r} is invalid; pass a non-empty subset of ('sync', 'async')"
        raise ConfigError(msg, parameter="modes", value=modes)
    for case in cases(modes):
        try:
            case.run(make_store)
        except Exception as exc:
            raise AssertionError(f"store contract check {case.id!r} failed: {exc}") from exc
