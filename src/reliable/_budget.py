"""`reliable.RetryBudget`: a retry allowance shared by every process that uses the same store.

Retries are capped, per time window, at a share of the calls made plus a small floor,
the way Finagle's and gRPC's retry budgets work: each call deposits *ratio* tokens,
each retry withdraws one, and *min_per_second* tokens per second are always there.
When an outage makes every call fail, the fleet then sends at most
``calls * (1 + ratio) + floor`` requests instead of ``calls * attempts``.

The counts live in the store as two counters per window (``store.incr`` with a TTL),
so the budget works the same on every backend and across processes and hosts. Calls
are counted in-process and deposited in batches (on every retry, and every
*flush_every* calls), so a call that succeeds costs one integer increment.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from ._config import StoreLike, resolve_store
from ._errors import ConfigError
from ._internal import _clock
from ._internal._durations import Duration, seconds
from .stores import AsyncStore, Store

__all__ = ["RetryBudget"]

_log = logging.getLogger("reliable.retry")


class RetryBudget:
    """A token bucket of retries shared through the store: at most *ratio* * calls + *min_per_second* * window retries.

    Pass one to ``reliable.retry(budget=...)``. Every `reliable.retry` (in any process)
    that uses a budget with the same *name* and store draws from the same allowance.
    When it is empty, a failed call is not retried: the caller's exception is raised at
    once, with a note saying so, and ``reliable.retry.budget_exhausted`` is emitted.

    >>> from reliable.stores.memory import MemoryStore
    >>> budget = RetryBudget("payments-api", ratio=0.2, min_per_second=0, window="10s", store=MemoryStore())
    >>> budget
    RetryBudget('payments-api', ratio=0.2, min_per_second=0.0, window=10.0)

    Args:
        name: Budgets with the same name share their counts.
        ratio: Retries allowed per call (0.2: one retry per five calls).
        min_per_second: Retries always allowed per second, so a process that makes few
            calls can still retry.
        window: Length of the counting window (seconds, `timedelta` or ``"10s"``).
        store: The store or store URL; default: the configured store.
        flush_every: Deposit the calls counted in-process after this many.

    Raises:
        ConfigError: A value is out of range.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_lock", "_pending", "_store", "flush_every", "min_per_second", "name", "ratio", "window")

    def __init__(
        self,
        name: str = "default",
        *,
        ratio: float = 0.2,
        min_per_second: float = 1.0,
        window: Duration | timedelta = 10.0,
        store: StoreLike | None = None,
        flush_every: int = 32,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"name={name!r} is invalid; pass a non-empty string", parameter="name", value=name)
        for param, value in (("ratio", ratio), ("min_per_second", min_per_second)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                msg = f"{param}={value!r} is invalid; pass a number >= 0 (ratio=0.2 allows one retry per five calls)"
                raise ConfigError(msg, parameter=param, value=value)
        if isinstance(flush_every, bool) or not isinstance(flush_every, int) or flush_every < 1:
            msg = f"flush_every={flush_every!r} is invalid; pass an int >= 1"
            raise ConfigError(msg, parameter="flush_every", value=flush_every)
        if store is not None and not isinstance(store, (str, Store)):
            msg = f"store={store!r} is not a store; pass a Store object or a URL such as 'sqlite:///state.db'"
            raise ConfigError(msg, parameter="store", value=store)
        self.name = name
        self.ratio = float(ratio)
        self.min_per_second = float(min_per_second)
        self.window = seconds(window, "window", allow_zero=False)
        self.flush_every = flush_every
        self._store = store
        self._pending = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"RetryBudget({self.name!r}, ratio={self.ratio:g}, min_per_second={self.min_per_second:.1f}, "
            f"window={self.window:.1f})"
        )

    def _keys(self) -> tuple[str, str, float]:
        index = int(_clock.current().time() // self.window)
        prefix = f"reliable:retry-budget:{self.name}:{index}"
        return f"{prefix}:calls", f"{prefix}:retries", 2 * self.window

    def _take_pending(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, 0
        return pending

    def _restore_pending(self, pending: int) -> None:
        with self._lock:
            self._pending += pending

    def _allowed(self, calls: int) -> float:
        return self.min_per_second * self.window + self.ratio * calls

    # -- sync -------------------------------------------------------------------------------------------------

    def record_call(self) -> None:
        """Count one call (the decorator does this on every call); deposits every *flush_every* calls."""
        self._pending += 1
        if self._pending >= self.flush_every:
            self._flush()

    def _flush(self) -> None:
        pending = self._take_pending()
        if not pending:
            return
        calls_key, _, ttl = self._keys()
        try:
            resolve_store(self._store).incr(calls_key, pending, ttl=ttl)
        except Exception:
            self._restore_pending(pending)
            _log.debug("retry budget %r: could not deposit %d calls", self.name, pending, exc_info=True)

    def try_acquire(self) -> bool:
        """Withdraw one retry; False when the budget is empty. A store failure allows the retry (fails open)."""
        pending = self._take_pending()
        calls_key, retries_key, ttl = self._keys()
        try:
            store = resolve_store(self._store)
            calls = store.incr(calls_key, pending, ttl=ttl)
            retries = store.incr(retries_key, 1, ttl=ttl)
            if retries <= self._allowed(calls):
                return True
            store.incr(retries_key, -1, ttl=ttl)
        except Exception:
            _log.warning("retry budget %r: store failed; allowing the retry", self.name, exc_info=True)
            return True
        return False

    # -- async ------------------------------------------------------------------------------------------------

    async def arecord_call(self) -> None:
        """The async twin of `record_call`."""
        self._pending += 1
        if self._pending >= self.flush_every:
            pending = self._take_pending()
            calls_key, _, ttl = self._keys()
            try:
                await _aincr(resolve_store(self._store), calls_key, pending, ttl)
            except Exception:
                self._restore_pending(pending)
                _log.debug("retry budget %r: could not deposit %d calls", self.name, pending, exc_info=True)

    async def atry_acquire(self) -> bool:
        """The async twin of `try_acquire`."""
        pending = self._take_pending()
        calls_key, retries_key, ttl = self._keys()
        try:
            store = resolve_store(self._store)
            calls = await _aincr(store, calls_key, pending, ttl)
            retries = await _aincr(store, retries_key, 1, ttl)
            if retries <= self._allowed(calls):
                return True
            await _aincr(store, retries_key, -1, ttl)
        except Exception:
            _log.warning("retry budget %r: store failed; allowing the retry", self.name, exc_info=True)
            return True
        return False


async def _aincr(store: Any, key: str, amount: int, ttl: float) -> int:
    if isinstance(store, AsyncStore):
        return await store.aincr(key, amount, ttl=ttl)
    result: int = store.incr(key, amount, ttl=ttl)
    return result
