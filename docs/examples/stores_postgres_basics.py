"""PostgresStore: a table of its own, created on first use or by migrate(), shared by every host.

Run: python docs/examples/stores_postgres_basics.py  (needs PostgreSQL at 127.0.0.1, or POSTGRES_URL)

The store lives in a schema made for this run, dropped at the end.
"""

from __future__ import annotations

import os
import sys
import uuid

import reliable
from reliable.stores.postgres import PostgresStore

POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def main() -> int:
    schema = f"example_{uuid.uuid4().hex[:8]}"
    # The same as open(f"{POSTGRES_URL}?schema={schema}&table=jobs"). With create=False the
    # table must exist already (run migrate() or postgres.sql once as a user who may run DDL).
    store = PostgresStore(POSTGRES_URL, schema=schema, table="jobs")
    try:
        print("schema version:", store.migrate())  # also done on first use; safe to repeat
    except reliable.StoreUnavailableError as exc:
        print("no PostgreSQL here:", exc)
        return 1 if os.environ.get("RELIABLE_REQUIRE_SERVICES") == "1" else 0
    try:
        lease, created = store.put_if_absent("lock:report", {"owner": "host-a"}, ttl=30)
        print("leased:", created, "| token", store.incr("lock:report:token"), "| table", store.table)

        # Renew the lease at the version we hold; a stale version gets None (no ABA).
        renewed = store.compare_and_set("lock:report", {"owner": "host-a"}, version=lease.version, ttl=30)
        stale = store.compare_and_set("lock:report", {"owner": "host-b"}, version=lease.version, ttl=30)
        print("renewed:", renewed is not None, "| stale renewal:", stale)

        # Stores opened by another process from the same URL see the same rows.
        print("keys:", [r.key for r in store.scan("lock:")])
    finally:
        store.close()
        drop(schema)
    return 0


def drop(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    sys.exit(main())
