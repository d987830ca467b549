"""`FaultyStore`: a store wrapper that can be unavailable, flaky or slow, and obeys ``"store.*"`` fault rules."""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

from .._errors import ConfigError, StoreUnavailableError
from .._internal._durations import Duration, seconds
from ..stores._protocol import Record, Store, Value
from ._actions import Action, SimulatedCrash, arun, run

__all__ = ["STORE_OPERATIONS", "FaultyStore"]

STORE_OPERATIONS = ("now", "get", "put_if_absent", "compare_and_set", "set", "delete", "incr", "scan", "close")
"""The operations of `reliable.stores.Store`; ``"store.<operation>"`` names a fault point (async twins included)."""


class _Mode:
    """The mode a `FaultyStore` switched to; as a context manager it switches back on exit."""

    def __init__(self, store: FaultyStore, previous: tuple[str, float, frozenset[str] | None]) -> None:
        self._store = store
        self._previous = previous

    def __enter__(self) -> FaultyStore:
        return self._store

    def __exit__(self, *exc: object) -> None:
        self._store._mode = self._previous


class FaultyStore:
    """A `reliable.stores.Store` and `AsyncStore` that delegates to *inner* unless a fault says otherwise.

    Made by `Faults.wrap_store` (the ``reliable_store`` fixture is one). Switch its mode at any
    time, or for a ``with`` block: `unavailable` (every operation raises `StoreUnavailableError`),
    `flaky` (each operation fails with a seeded probability), `slow` (each operation takes time
    on the fake clock), `healthy`. The `Faults`' rules at ``"store.<operation>"`` and
    ``"store.*"`` apply too. While a `SimulatedCrash` propagates in the calling thread or task
    (in an ``except`` or ``finally`` block, or an ``__exit__``), every operation fails with
    `StoreUnavailableError`: the crashed process cannot clean up in the store, while the
    primitive's own in-process bookkeeping, which a real crash would wipe, is released.

    Attributes:
        inner: The wrapped store.
        calls: How many times each operation was called (``calls["get"]``), async twins included.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        inner: Store,
        *,
        decide: Callable[..., Action],
        record: Callable[[str, str, int, str], None],
        rng: random.Random,
        rate: float,
        name: str = "store",
    ) -> None:
        self.inner = inner
        self.name = name
        self.calls: Counter[str] = Counter()
        self._decide = decide
        self._record = record
        self._rng = rng
        self._rate = rate
        self._mode: tuple[str, float, frozenset[str] | None] = ("healthy", 0.0, None)

    def __repr__(self) -> str:
        return f"FaultyStore({self.inner!r}, mode={self.mode!r})"

    @property
    def mode(self) -> str:
        """``"healthy"``, ``"unavailable"``, ``"flaky"`` or ``"slow"``."""
        return self._mode[0]

    # -- modes --------------------------------------------------------------------------

    def unavailable(self, *, ops: list[str] | None = None) -> _Mode:
        """Make every operation (or those in *ops*) raise `StoreUnavailableError`, as if the server were down."""
        return self._switch("unavailable", 0.0, ops)

    def flaky(self, rate: float | None = None, *, ops: list[str] | None = None) -> _Mode:
        """Make each operation fail with probability *rate* (default: the `Faults`' rate), seeded."""
        chance = self._rate if rate is None else rate
        if isinstance(chance, bool) or not isinstance(chance, (int, float)) or not 0 <= chance <= 1:
            msg = f"rate={rate!r} is not a probability; pass a number from 0 to 1, e.g. 0.2"
            raise ConfigError(msg, parameter="rate", value=rate)
        return self._switch("flaky", float(chance), ops)

    def slow(self, duration: Duration, *, ops: list[str] | None = None) -> _Mode:
        """Make every operation take *duration* on the fake clock before it runs."""
        return self._switch("slow", seconds(duration, "duration"), ops)

    def healthy(self) -> _Mode:
        """Back to plain delegation (the `Faults`' ``"store.*"`` rules still apply)."""
        return self._switch("healthy", 0.0, None)

    def _switch(self, mode: str, amount: float, ops: list[str] | None) -> _Mode:
        chosen = None
        if ops is not None:
            unknown = sorted(set(ops) - set(STORE_OPERATIONS))
            if unknown:
                msg = f"ops={ops!r} names unknown operations {unknown}; use some of {', '.join(STORE_OPERATIONS)}"
                raise ConfigError(msg, parameter="ops", value=ops)
            chosen = frozenset(ops)
        previous, self._mode = self._mode, (mode, amount, chosen)
        return _Mode(self, previous)

    # -- the decision for one operation ---------------------------------------------------

    def _action(self, op: str) -> Action:
        point = f"store.{op}"
        self.calls[op] += 1
        crash = sys.exc_info()[1]
        if isinstance(crash, SimulatedCrash):
            self._record(point, "crash", self.calls[op], f"refused: the process crashed at {crash.point!r}")
            msg = f"{point} refused: the process crashed at {crash.point!r} (simulated by reliable.testing)"
            return Action(outcome="raise", error=StoreUnavailableError(msg, address=f"faulty:{self.name}"))
        mode, amount, ops = self._mode
        delay = 0.0
        if mode != "healthy" and (ops is None or op in ops):
            if mode == "unavailable" or (mode == "flaky" and self._rng.random() < amount):
                self._record(point, mode, self.calls[op], "StoreUnavailableError")
                return Action(outcome="raise", error=self._down(point, mode))
            if mode == "slow":
                self._record(point, "slow", self.calls[op], f"{amount:g}s")
                delay = amount
        action = self._decide(point, "store.*")
        if delay:
            return Action(delay + action.delay, action.outcome, action.error, action.value)
        return action

    def _down(self, point: str, mode: str) -> StoreUnavailableError:
        msg = f"{point} failed: {self.name} is {mode} (injected by reliable.testing); test fail-open or fail-closed"
        error = StoreUnavailableError(msg, address=f"faulty:{self.name}")
        error.__cause__ = ConnectionRefusedError(111, "Connection refused (injected)")
        return error

    def _async(self, op: str) -> Callable[..., Any]:
        method = getattr(self.inner, "a" + op, None)
        if method is not None:
            return method  # type: ignore[no-any-return]  # the inner store's own async twin
        sync = getattr(self.inner, op)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return sync(*args, **kwargs)

        return call

    # -- Store ------------------------------------------------------------------------------

    def now(self) -> float:
        return run(self._action("now"), "store.now", self.inner.now)

    def get(self, key: str) -> Record | None:
        return run(self._action("get"), "store.get", lambda: self.inner.get(key))

    def put_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]:
        return run(
            self._action("put_if_absent"), "store.put_if_absent", lambda: self.inner.put_if_absent(key, value, ttl=ttl)
        )

    def compare_and_set(self, key: str, value: Value, *, version: int, ttl: float | None = None) -> Record | None:
        call = lambda: self.inner.compare_and_set(key, value, version=version, ttl=ttl)  # noqa: E731
        return run(self._action("compare_and_set"), "store.compare_and_set", call)

    def set(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        return run(self._action("set"), "store.set", lambda: self.inner.set(key, value, ttl=ttl))

    def delete(self, key: str, *, version: int | None = None) -> bool:
        return run(self._action("delete"), "store.delete", lambda: self.inner.delete(key, version=version))

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return run(self._action("incr"), "store.incr", lambda: self.inner.incr(key, amount, ttl=ttl))

    def scan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        return run(self._action("scan"), "store.scan", lambda: self.inner.scan(prefix, limit=limit))

    def close(self) -> None:
        run(self._action("close"), "store.close", self.inner.close)

    # -- AsyncStore ---------------------------------------------------------------------------

    async def anow(self) -> float:
        return await arun(self._action("now"), "store.now", self._async("now"))

    async def aget(self, key: str) -> Record | None:
        return await arun(self._action("get"), "store.get", lambda: self._async("get")(key))

    async def aput_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]:
        call = lambda: self._async("put_if_absent")(key, value, ttl=ttl)  # noqa: E731
        return await arun(self._action("put_if_absent"), "store.put_if_absent", call)

    async def acompare_and_set(
        self, key: str, value: Value, *, version: int, ttl: float | None = None
    ) -> Record | None:
        call = lambda: self._async("compare_and_set")(key, value, version=version, ttl=ttl)  # noqa: E731
        return await arun(self._action("compare_and_set"), "store.compare_and_set", call)

    async def aset(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        return await arun(self._action("set"), "store.set", lambda: self._async("set")(key, value, ttl=ttl))

    async def adelete(self, key: str, *, version: int | None = None) -> bool:
        return await arun(self._action("delete"), "store.delete", lambda: self._async("delete")(key, version=version))

    async def aincr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return await arun(self._action("incr"), "store.incr", lambda: self._async("incr")(key, amount, ttl=ttl))

    async def ascan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        return await arun(self._action("scan"), "store.scan", lambda: self._async("scan")(prefix, limit=limit))

    async def aclose(self) -> None:
        await arun(self._action("close"), "store.close", self._async("close"))
