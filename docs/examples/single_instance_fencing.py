"""Locks across hosts: a store lease with a fencing token, and what happens when a holder pauses too long.

Host A takes the lease, then stalls (a GC pause, a frozen VM) past its TTL. Host B takes
the lease with a larger token. The database below remembers the largest token it has seen
and refuses older ones, so A's late write is rejected; A's ``check()`` also tells it that
it lost the lease. A fake clock stands in for the stall, so this runs in milliseconds.
"""

from __future__ import annotations

import reliable
from reliable.stores.memory import MemoryStore
from reliable.testing import FakeClock, installed


class Database:
    """A resource that accepts a write only with a token at least as large as any it has seen."""

    def __init__(self) -> None:
        self.highest = 0
        self.rows: list[str] = []

    def write(self, row: str, *, token: int) -> bool:
        if token < self.highest:
            return False
        self.highest = token
        self.rows.append(row)
        return True


def main() -> None:
    store = MemoryStore()  # in production: reliable.configure(store="redis://...", locks="store")
    db = Database()
    clock = FakeClock()
    with installed(clock):
        host_a = reliable.single_instance("billing", store=store, ttl=30).acquire()
        assert isinstance(host_a, reliable.Lease)
        print("A holds the lease with token", host_a.token)
        assert db.write("A: first batch", token=host_a.token)

        clock.advance(31)  # A stalls past its TTL: 31 s go by at once, no renewal can happen meanwhile

        host_b = reliable.single_instance("billing", store=_OtherHost(store), on_conflict="raise").acquire()
        print("B took over with token", host_b.token)
        assert db.write("B: second batch", token=host_b.token)

        accepted = db.write("A: late write", token=host_a.token)
        print("A's late write accepted?", accepted)
        try:
            host_a.check()
        except reliable.LeaseLostError as exc:
            print("A finds out:", exc.message)
        host_a.release()  # deletes nothing: the lease is B's now
        host_b.release()
    print("rows:", db.rows)


class _OtherHost:
    """The same store as another host sees it (this demo runs both hosts in one process)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


if __name__ == "__main__":
    main()
