"""`_Awaited`: a blocking view of a store's async twins, so one blocking check covers both."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from ..stores._protocol import AsyncStore, Record

T = TypeVar("T")


class _Awaited:
    """A blocking view of a store's async twin: each method awaits its ``a``-method on a private loop."""

    def __init__(self, store: AsyncStore) -> None:
        self._store = store
        self._loop = asyncio.new_event_loop()

    def _run(self, awaitable: Awaitable[T]) -> T:
        async def wrap() -> T:
            return await awaitable

        if self._loop.is_closed():  # used after close(): the store must say it is closed, not the loop
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(wrap())

    def now(self) -> float:
        return self._run(self._store.anow())

    def get(self, key: str) -> Record | None:
        return self._run(self._store.aget(key))

    def put_if_absent(self, key: str, value: Any, *, ttl: float | None = None) -> tuple[Record, bool]:
        return self._run(self._store.aput_if_absent(key, value, ttl=ttl))

    def compare_and_set(self, key: str, value: Any, *, version: int, ttl: float | None = None) -> Record | None:
        return self._run(self._store.acompare_and_set(key, value, version=version, ttl=ttl))

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> Record:
        return self._run(self._store.aset(key, value, ttl=ttl))

    def delete(self, key: str, *, version: int | None = None) -> bool:
        return self._run(self._store.adelete(key, version=version))

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return self._run(self._store.aincr(key, amount, ttl=ttl))

    def scan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        return self._run(self._store.ascan(prefix, limit=limit))

    def close(self) -> None:
        try:
            self._run(self._store.aclose())
        finally:
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()
