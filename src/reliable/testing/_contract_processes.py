"""The multi-process CAS race: spawned processes open one store by URL and race on a key.

It needs a store URL, so it is kept out of `check_store`; tests/test_stores.py runs it on
the backends that have one.
"""

from __future__ import annotations

from typing import Any

from ._contract_base import _eq
from ._contract_races import _cas_increments

__all__ = ["race_processes"]


def _process_worker(url: str, key: str, count: int, barrier: Any) -> None:
    from ..stores import open as open_store

    store = open_store(url)
    try:
        barrier.wait(timeout=60)
        _cas_increments(store, key, count)
    finally:
        store.close()


def race_processes(url: str, *, processes: int = 4, increments: int = 500, timeout: float = 120.0) -> int:
    """Race *processes* spawned processes, each doing *increments* CAS increments of one key, and return the total.

    Each child opens the store by *url* with `reliable.stores.open`; they start together
    behind a barrier. Raises `AssertionError` if a child fails or the race outlives *timeout*.
    """
    import multiprocessing

    from ..stores import open as open_store

    key = "race:counter"
    store = open_store(url)
    try:
        store.set(key, 0)
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(processes)
        children = [
            context.Process(target=_process_worker, args=(url, key, increments, barrier), daemon=True)
            for _ in range(processes)
        ]
        for child in children:
            child.start()
        for child in children:
            child.join(timeout=timeout)
        stuck = [child for child in children if child.is_alive()]
        for child in stuck:
            child.kill()
        _eq([], [child.pid for child in stuck], f"children still running after {timeout}s")
        _eq([0] * processes, [child.exitcode for child in children], "children's exit codes")
        total: int = store.get(key).value
        return total
    finally:
        store.close()
