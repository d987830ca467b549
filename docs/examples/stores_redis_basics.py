"""RedisStore: open it by URL, share it between processes, and see what a dead server looks like.

Run: python docs/examples/stores_redis_basics.py  (needs a Redis at 127.0.0.1:6379, or REDIS_URL)

Everything lives under one key prefix, so this script cleans up after itself by deleting
that prefix. A store opened with the same URL in another process or on another host sees
the same records.
"""

from __future__ import annotations

import os
import sys
import uuid

import reliable
from reliable.stores import open as open_store

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def main() -> int:
    prefix = f"example-{uuid.uuid4().hex[:8]}:"
    store = open_store(f"{REDIS_URL}?prefix={prefix}")  # RedisStore(REDIS_URL, prefix=prefix) does the same
    try:
        record, created = store.put_if_absent("job:nightly", {"owner": "host-a"}, ttl=60)
    except reliable.StoreUnavailableError as exc:
        print("no Redis here:", exc)
        return 1 if os.environ.get("RELIABLE_REQUIRE_SERVICES") == "1" else 0
    try:
        left = round(record.expires_at - store.now())
        print("claimed:", created, "| version", record.version, "| expires in", left, "s")

        # Another host trying the same claim learns in the same round trip who holds it.
        _, created_again = store.put_if_absent("job:nightly", {"owner": "host-b"}, ttl=60)
        print("second claim created:", created_again, "| held by", store.get("job:nightly").value["owner"])

        # Every primitive takes the store (or its URL) the same way.
        @reliable.idempotent(store=store, key=lambda order_id: order_id, name="charge")
        def charge(order_id: str) -> str:
            print("  charging", order_id)
            return f"receipt for {order_id}"

        print(charge("order-1"), "|", charge("order-1"), "(the second call replays)")
    finally:
        close_and_clean(store, prefix)

    # A server that is not there raises StoreUnavailableError with its address, never a password.
    dead = open_store("redis://:secret@127.0.0.1:1/0")
    try:
        dead.incr("n")
    except reliable.StoreUnavailableError as exc:
        print("unreachable:", exc.details["address"], "| maybe applied:", exc.details["maybe_applied"])
    dead.close()
    return 0


def close_and_clean(store: object, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()
    store.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
