"""Open a store from a URL, and find the default store's path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._errors import ConfigError

SCHEMES = ("memory://", "sqlite:///", "redis://", "rediss://", "postgresql://", "postgres://")


def default_path() -> Path:
    """Where the embedded default store lives: ``$XDG_STATE_HOME/reliable/state.db``.

    Falls back to ``~/.local/state/reliable/state.db`` when ``XDG_STATE_HOME`` is unset.
    """
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "reliable" / "state.db"


def open(url: str) -> Any:  # noqa: A001 - mirrors the builtin on purpose, as `dbm.open` does
    """Open the store a URL names.

    Accepted forms (SQLAlchemy's convention for SQLite paths):

    - ``memory://``
    - ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db``
    - ``redis://host:6379/0`` and ``rediss://…`` (needs ``reliable[redis]``)
    - ``postgresql://user@host/db`` (needs ``reliable[postgres]``)

    Raises:
        ConfigError: the URL has another scheme or no path.
    """
    if not isinstance(url, str):
        msg = f"store URL {url!r} is not a string; pass one of {', '.join(SCHEMES)}"
        raise ConfigError(msg, url=url)
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory" and url.rstrip("/") in ("memory:", "memory:/"):
        from .memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite" and url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite:///") :])
    if scheme in ("redis", "rediss", "unix"):
        try:
            from .redis import RedisStore
        except ImportError as exc:
            raise _missing_extra(url, "redis", exc) from exc
        return RedisStore(url)
    if scheme in ("postgresql", "postgres"):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:
            raise _missing_extra(url, "postgres", exc) from exc
        return PostgresStore(url)
    msg = f"cannot open store URL {url!r}; use one of {', '.join(SCHEMES)} (e.g. 'sqlite:////var/lib/myjob/state.db')"
    raise ConfigError(msg, url=url)


def _missing_extra(url: str, extra: str, exc: ImportError) -> ConfigError:
    msg = f"store URL {url.split('@')[-1]!r} needs the {extra!r} extra ({exc}); pip install 'reliable[{extra}]'"
    return ConfigError(msg, url=url, extra=extra)
