"""`reliable migrate`: creates the PostgreSQL store's objects, or prints their SQL."""

from __future__ import annotations

import uuid

import pytest

from backends import BACKENDS, REQUIRE_SERVICES
from reliable._cli import main


def test_print_sql_shows_the_ddl(capsys: pytest.CaptureFixture[str]) -> None:
    """--print-sql prints the DDL for the given schema and table without connecting anywhere."""
    code = main(["migrate", "--print-sql", "--schema", "jobs", "--table", "state"])

    out = capsys.readouterr().out
    assert 0 == code
    assert "CREATE TABLE" in out.upper()
    assert "jobs" in out
    assert "state" in out


def test_refuses_a_non_postgres_url(capsys: pytest.CaptureFixture[str]) -> None:
    """A store URL that is not postgresql:// exits 2 with a message naming the option."""
    code = main(["migrate", "--store", "sqlite:///x.db"])

    assert 2 == code
    assert "--store must be a postgresql:// URL" in capsys.readouterr().err


def test_migrate_creates_the_table_and_is_repeatable(capsys: pytest.CaptureFixture[str]) -> None:
    """Migrating a fresh table reports the schema version, and running it again changes nothing."""
    reason = BACKENDS["postgres"].unavailable()
    if reason is not None:
        if REQUIRE_SERVICES:
            pytest.fail(f"postgres unreachable and RELIABLE_REQUIRE_SERVICES=1: {reason}")
        pytest.skip(f"postgres unreachable: {reason}")
    import server_backends

    table = f"migrate_{uuid.uuid4().hex[:10]}"
    url = f"{server_backends.POSTGRES_URL}?table={table}"
    try:
        first = main(["migrate", "--store", url])
        second = main(["migrate", "--store", url])
        out = capsys.readouterr().out
    finally:
        import psycopg

        with psycopg.connect(server_backends.POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')
            conn.execute(f'DROP SEQUENCE IF EXISTS "{table}_version"')
            conn.execute(f'DROP TABLE IF EXISTS "{table}_meta"')

    assert (0, 0) == (first, second)
    assert 2 == out.count("schema version")
