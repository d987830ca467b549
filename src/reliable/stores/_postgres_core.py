"""The pure half of `PostgresStore`: its schema, its SQL, and how it reads the rows.

Every operation is one statement (one round trip in autocommit mode): a write is an
``INSERT … ON CONFLICT`` or ``UPDATE … WHERE version = …`` with ``RETURNING``, wrapped in
CTEs that read the server's ``clock_timestamp()`` (or take a test clock's time, see
`reliable.stores._server.test_time`) and delete up to 16 expired rows, so nothing needs a daemon.
Versions come from one sequence, so they only grow and are never reused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

from .._errors import ConfigError
from ._codec import check_amount, check_key, check_limit, check_prefix, check_ttl, check_version, decode, encode
from ._protocol import Record, Value
from ._server import decode_key, encode_key, prefix_end

SCHEMA_VERSION = 1
"""The layout this code reads and writes; kept in the ``<table>_meta`` table as ``schema_version``."""

DEFAULT_SCHEMA = "public"
DEFAULT_TABLE = "reliable_store"

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,47}")

_DDL = """\
DO $$ BEGIN  -- CREATE SCHEMA IF NOT EXISTS would need CREATE on the database even when it exists
  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '{schema}') THEN CREATE SCHEMA "{schema}"; END IF;
END $$;

CREATE TABLE IF NOT EXISTS "{schema}"."{table}" (
    key        bytea PRIMARY KEY,      -- UTF-8 of the key, so ORDER BY key is code-point order
    value      bytea NOT NULL,         -- the bytes, or JSON text when is_json
    is_json    boolean NOT NULL,
    version    bigint NOT NULL,        -- from the sequence below: grows, never reused
    expires_at double precision        -- store time (seconds since the epoch), NULL = never
);

CREATE INDEX IF NOT EXISTS "{table}_expires_at"
    ON "{schema}"."{table}" (expires_at) WHERE expires_at IS NOT NULL;

CREATE SEQUENCE IF NOT EXISTS "{schema}"."{table}_version" AS bigint;

CREATE TABLE IF NOT EXISTS "{schema}"."{table}_meta" (
    name  text PRIMARY KEY,
    value text NOT NULL
);

INSERT INTO "{schema}"."{table}_meta" (name, value) VALUES ('schema_version', '{version}')
    ON CONFLICT (name) DO NOTHING;
"""

_NOW = "coalesce(%(now)s::float8, date_part('epoch', clock_timestamp()))"
_HEAD = f"WITH n AS (SELECT {_NOW} AS t)"
_PURGE = """, purge AS (
  DELETE FROM {t} WHERE key IN (
    SELECT key FROM {t} WHERE expires_at <= (SELECT t FROM n) AND key <> %(key)s
    LIMIT 16 FOR UPDATE SKIP LOCKED))"""
_EXPIRED = "r.expires_at <= (SELECT t FROM n)"

_SQL = {
    "get": "SELECT value, is_json, version, expires_at FROM {t} "
    "WHERE key = %(key)s AND (expires_at IS NULL OR expires_at > " + _NOW + ")",
    "put_if_absent": _HEAD
    + ", v AS (SELECT nextval('{seq}') AS v)"
    + _PURGE
    + """
INSERT INTO {t} AS r (key, value, is_json, version, expires_at)
SELECT %(key)s, %(value)s, %(is_json)s, v.v, n.t + %(ttl)s::float8 FROM n, v
ON CONFLICT (key) DO UPDATE SET
  value = CASE WHEN {expired} THEN excluded.value ELSE r.value END,
  is_json = CASE WHEN {expired} THEN excluded.is_json ELSE r.is_json END,
  version = CASE WHEN {expired} THEN excluded.version ELSE r.version END,
  expires_at = CASE WHEN {expired} THEN excluded.expires_at ELSE r.expires_at END
RETURNING r.version = (SELECT v FROM v), r.value, r.is_json, r.version, r.expires_at""",
    "compare_and_set": _HEAD
    + _PURGE
    + """
UPDATE {t} SET value = %(value)s, is_json = %(is_json)s, version = nextval('{seq}'),
  expires_at = (SELECT t FROM n) + %(ttl)s::float8
WHERE key = %(key)s AND version = %(version)s::int8 AND (expires_at IS NULL OR expires_at > (SELECT t FROM n))
RETURNING version, expires_at""",
    "set": _HEAD
    + _PURGE
    + """
INSERT INTO {t} AS r (key, value, is_json, version, expires_at)
SELECT %(key)s, %(value)s, %(is_json)s, nextval('{seq}'), n.t + %(ttl)s::float8 FROM n
ON CONFLICT (key) DO UPDATE SET value = excluded.value, is_json = excluded.is_json,
  version = excluded.version, expires_at = excluded.expires_at
RETURNING version, expires_at""",
    "delete": _HEAD
    + """
DELETE FROM {t} WHERE key = %(key)s AND (%(version)s::int8 IS NULL OR version = %(version)s::int8)
  AND (expires_at IS NULL OR expires_at > (SELECT t FROM n))""",
    "incr": _HEAD
    + _PURGE
    + """
INSERT INTO {t} AS r (key, value, is_json, version, expires_at)
SELECT %(key)s, convert_to(%(amount)s::numeric::text, 'UTF8'), true, nextval('{seq}'), n.t + %(ttl)s::float8 FROM n
ON CONFLICT (key) DO UPDATE SET
  value = CASE WHEN {expired} THEN excluded.value
    WHEN r.is_json AND convert_from(r.value, 'UTF8') ~ '^-?[0-9]+$'
    THEN convert_to((convert_from(r.value, 'UTF8')::numeric + %(amount)s::numeric)::text, 'UTF8') END,
  is_json = true,
  version = excluded.version,
  expires_at = CASE WHEN {expired} THEN excluded.expires_at ELSE r.expires_at END
RETURNING r.value""",
    "scan": "SELECT key, value, is_json, version, expires_at FROM {t} "
    "WHERE key >= %(low)s AND (expires_at IS NULL OR expires_at > " + _NOW + ") ORDER BY key LIMIT %(limit)s::int8",
    "scan_bounded": "SELECT key, value, is_json, version, expires_at FROM {t} "
    "WHERE key >= %(low)s AND key < %(high)s AND (expires_at IS NULL OR expires_at > " + _NOW + ") "
    "ORDER BY key LIMIT %(limit)s::int8",
    "now": "SELECT " + _NOW,
    "schema_version": "SELECT value FROM {meta} WHERE name = 'schema_version'",
}

NOT_A_COUNTER_STATES = frozenset({"23502"})
"""SQLSTATE of ``incr`` on a value that is not an int (the new value is NULL: a not-null violation)."""

Rows = list[tuple[Any, ...]]


class Query(NamedTuple):
    """One statement: its SQL (bytes), parameters, and the parser of ``(rows, rowcount)``."""

    operation: str
    key: str | None
    sql: bytes
    params: dict[str, Any]
    parse: Callable[[Rows, int], Any]


def identifier(value: str, name: str) -> str:
    """Return *value* if it is a safe lower-case SQL identifier, else raise `ConfigError` naming *name*."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        msg = (
            f"{name}={value!r} is not a valid PostgreSQL name here; pass lower-case letters, digits and '_', "
            "starting with a letter or '_', at most 48 characters (e.g. 'reliable_store')"
        )
        raise ConfigError(msg, parameter=name, value=value)
    return value


def ddl(schema: str = DEFAULT_SCHEMA, table: str = DEFAULT_TABLE) -> str:
    """The SQL that creates the store's table, sequence and schema-version row (idempotent).

    It is what `PostgresStore.migrate` runs, and what ``postgres.sql`` holds for the default names.
    """
    return _DDL.format(schema=identifier(schema, "schema"), table=identifier(table, "table"), version=SCHEMA_VERSION)


class Statements:
    """The store's SQL with its table names filled in, and the query builders for each operation."""

    def __init__(self, schema: str, table: str) -> None:
        self.schema = identifier(schema, "schema")
        self.table = identifier(table, "table")
        names = {
            "t": f'"{schema}"."{table}"',
            "seq": f'"{schema}"."{table}_version"',
            "meta": f'"{schema}"."{table}_meta"',
            "expired": _EXPIRED,
        }
        self.sql = {op: _fill(text, names).encode() for op, text in _SQL.items()}
        self.ddl = ddl(schema, table)
        self.lock_name = f"reliable:{schema}"  # one lock per schema: CREATE SCHEMA IF NOT EXISTS races too

    def now(self, now: float | None) -> Query:
        return Query("now", None, self.sql["now"], {"now": now}, lambda rows, _: float(rows[0][0]))

    def get(self, key: str, now: float | None) -> Query:
        raw = encode_key(check_key(key))
        parse = _one(lambda row: _record(key, row))
        return Query("get", key, self.sql["get"], {"key": raw, "now": now}, parse)

    def put_if_absent(self, key: str, value: Value, ttl: float | None, now: float | None) -> Query:
        params = _write_params(key, value, ttl, now)
        return Query("put_if_absent", key, self.sql["put_if_absent"], params, _claimed(key))

    def compare_and_set(self, key: str, value: Value, version: int, ttl: float | None, now: float | None) -> Query:
        params = {**_write_params(key, value, ttl, now), "version": check_version(version)}
        parse = _one(_written(key, params))
        return Query("compare_and_set", key, self.sql["compare_and_set"], params, parse)

    def set(self, key: str, value: Value, ttl: float | None, now: float | None) -> Query:
        params = _write_params(key, value, ttl, now)
        return Query("set", key, self.sql["set"], params, _one(_written(key, params)))

    def delete(self, key: str, version: int | None, now: float | None) -> Query:
        params = {"key": encode_key(check_key(key)), "now": now}
        params["version"] = None if version is None else check_version(version)
        return Query("delete", key, self.sql["delete"], params, lambda _, count: count > 0)

    def incr(self, key: str, amount: int, ttl: float | None, now: float | None) -> Query:
        params = {"key": encode_key(check_key(key)), "amount": check_amount(amount), "ttl": check_ttl(ttl)}
        params["now"] = now
        return Query("incr", key, self.sql["incr"], params, lambda rows, _: int(rows[0][0]))

    def scan(self, prefix: str, limit: int | None, now: float | None) -> Query | None:
        """The scan query, or None when *limit* asks for nothing."""
        if check_limit(limit) == 0:
            return None
        low = encode_key(check_prefix(prefix))
        high = prefix_end(low)
        params: dict[str, Any] = {"low": low, "limit": limit, "now": now}
        if high is not None:
            params["high"] = high
        sql = self.sql["scan" if high is None else "scan_bounded"]
        return Query("scan", None, sql, params, lambda rows, _: [_record(decode_key(r[0]), r[1:]) for r in rows])

    def schema_version(self) -> Query:
        return Query("schema_version", None, self.sql["schema_version"], {}, lambda rows, _: rows)


def _fill(text: str, names: dict[str, str]) -> str:
    # Only {t}, {seq}, {meta}, {expired} are placeholders; %(...)s stays for psycopg.
    for name, value in names.items():
        text = text.replace("{" + name + "}", value)
    return text


def _write_params(key: str, value: Value, ttl: float | None, now: float | None) -> dict[str, Any]:
    raw = encode_key(check_key(key))
    is_json, payload = encode(value)
    return {"key": raw, "value": payload, "is_json": is_json, "ttl": check_ttl(ttl), "now": now}


def _record(key: str, row: Any) -> Record:
    value, is_json, version, expires_at = row
    return Record(key, decode(bool(is_json), bytes(value)), int(version), None if expires_at is None else expires_at)


def _one(build: Callable[[Any], Any]) -> Callable[[Rows, int], Any]:
    return lambda rows, _: build(rows[0]) if rows else None


def _written(key: str, params: dict[str, Any]) -> Callable[[Any], Record]:
    def build(row: Any) -> Record:
        return Record(key, decode(params["is_json"], params["value"]), int(row[0]), row[1])

    return build


def _claimed(key: str) -> Callable[[Rows, int], tuple[Record, bool]]:
    def parse(rows: Rows, _: int) -> tuple[Record, bool]:
        created, *row = rows[0]
        return _record(key, row), bool(created)

    return parse
