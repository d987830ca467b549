"""The store backends the conformance suite and every store-backed test run against.

Each `Backend` makes fresh, isolated stores. Backends that several processes can
share also give a URL, so a child process can open the same store by itself.
Redis and PostgreSQL register here too (issue 8); the `store` fixture in conftest.py
is parametrized over every entry of `BACKENDS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reliable.stores import Store
from reliable.stores.memory import MemoryStore
from reliable.stores.sqlite import SQLiteStore

REQUIRE_SERVICES = os.environ.get("RELIABLE_REQUIRE_SERVICES") == "1"


@dataclass(frozen=True)
class Backend:
    name: str
    url: Callable[[Path], str] | None
    """A URL for a fresh, isolated store under *tmp_path*; None if processes cannot share it."""
    make: Callable[[Path], Store]
    """A fresh, isolated store (opened from `url` when there is one)."""
    unavailable: Callable[[], str | None] = lambda: None
    """Why the backend's server cannot be reached right now, or None when it can."""


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


BACKENDS: dict[str, Backend] = {
    "memory": Backend("memory", None, lambda _tmp: MemoryStore()),
    "sqlite": Backend("sqlite", _sqlite_url, lambda tmp: SQLiteStore(tmp / "state.db")),
}

# Redis and PostgreSQL: one key prefix / table per store, carried in the URL (see server_backends.py).
import server_backends as _servers  # noqa: E402

BACKENDS["redis"] = Backend(
    "redis", _servers.redis_url, lambda tmp: _servers.open_url(_servers.redis_url(tmp)), _servers.redis_unavailable
)
BACKENDS["postgres"] = Backend(
    "postgres",
    _servers.postgres_url,
    lambda tmp: _servers.open_url(_servers.postgres_url(tmp)),
    _servers.postgres_unavailable,
)
