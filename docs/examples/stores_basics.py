"""The store protocol in a few calls: create once, compare-and-set, TTL, counters, scans.

Run: python docs/examples/stores_basics.py

The same code works on every backend; here a MemoryStore and an SQLiteStore in a
temporary directory, with a FakeClock so the TTLs expire without waiting.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from reliable.stores import Store
from reliable.stores.memory import MemoryStore
from reliable.stores.sqlite import SQLiteStore
from reliable.testing import FakeClock, installed


def tour(store: Store, clock: FakeClock) -> None:
    # put_if_absent creates a key once and tells everyone else who holds it.
    claim, created = store.put_if_absent("job:42", {"state": "running", "owner": "worker-1"}, ttl=60)
    again, created_again = store.put_if_absent("job:42", {"state": "running", "owner": "worker-2"})
    print("created:", created, "| second caller sees:", again.value["owner"], created_again)

    # compare_and_set writes only over the version you read; a stale version gets None.
    done = store.compare_and_set("job:42", {"state": "done", "result": 7}, version=claim.version)
    assert done is not None
    print("completed at version", done.version, "| stale write:", store.compare_and_set("job:42", {}, version=1))

    # A TTL makes a record vanish at once when it expires; the fake clock moves time for us.
    store.set("heartbeat:sync", b"alive", ttl=30)
    clock.advance(31)
    print("heartbeat after 31 s:", store.get("heartbeat:sync"))

    # incr is an atomic counter; its ttl sets a window when it creates the counter.
    print("fencing tokens:", [store.incr("lock:report:token") for _ in range(3)])
    print("requests this minute:", store.incr("rate:api", ttl=60), store.incr("rate:api", ttl=60))

    # scan lists live records by prefix, sorted by key.
    print("jobs:", [(r.key, r.value["state"]) for r in store.scan("job:")])


def main() -> None:
    clock = FakeClock()
    with installed(clock), tempfile.TemporaryDirectory() as tmp:
        for store in (MemoryStore(), SQLiteStore(Path(tmp) / "state.db")):
            print(f"--- {store!r}")
            try:
                tour(store, clock)
            finally:
                store.close()


if __name__ == "__main__":
    main()
