"""``reliable migrate``: create the PostgreSQL store's table ahead of time, or print its SQL.

For deployments where the application's database role may not run DDL: an administrator
runs ``reliable migrate --store postgresql://admin@db/app`` once (or applies the SQL that
``--print-sql`` shows, the same as ``reliable/stores/postgres.sql``).
"""

from __future__ import annotations

import argparse
import sys

from ._errors import ReliableError

__all__ = ["MIGRATE_HELP", "add_migrate_arguments", "migrate"]

MIGRATE_HELP = "create the PostgreSQL store's schema, table and version row (or print their SQL)"


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="URL", help="postgresql:// URL of the store (default: $RELIABLE_STORE)")
    parser.add_argument("--print-sql", action="store_true", help="print the DDL instead of running it")
    parser.add_argument("--schema", default=None, help="with --print-sql: the schema name (default: public)")
    parser.add_argument("--table", default=None, help="with --print-sql: the table name (default: reliable_store)")


def migrate(args: argparse.Namespace) -> int:
    """Run the migration; exit 0 on success, 2 for a bad URL, 1 when the server refused."""
    import os

    if args.print_sql:
        from .stores.postgres import PostgresStore

        options = {k: v for k, v in (("schema", args.schema), ("table", args.table)) if v is not None}
        print(PostgresStore.ddl(**options))
        return 0
    url = args.store or os.environ.get("RELIABLE_STORE") or ""
    if not url.startswith(("postgresql://", "postgres://")):
        print(f"reliable migrate: --store must be a postgresql:// URL, got {url!r}", file=sys.stderr)
        return 2
    from .stores.postgres import PostgresStore

    store = PostgresStore(url)
    try:
        version = store.migrate()
    except ReliableError as exc:
        print(f"reliable migrate: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"reliable migrate: {store.address} is at schema version {version}")
    return 0
