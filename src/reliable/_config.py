"""`configure()`: the default store and alert sinks, the only global state besides the clock."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Union

from ._errors import ConfigError
from .stores import Store
from .stores import open as open_store

__all__ = ["StoreLike", "alert_sinks", "configure", "configured", "default_store", "resolve_store"]

StoreLike = Union[Store, str]
"""A store object, or a store URL such as ``"sqlite:////var/lib/myjob/state.db"``."""

_UNSET: Any = object()


@dataclass(frozen=True)
class _Config:
    store: Store | str | None = None
    alerts: tuple[Any, ...] | None = None
    opened: dict[str, Store] = field(default_factory=dict)


_lock = threading.RLock()
_config = _Config()


def configure(*, store: StoreLike | None = _UNSET, alerts: Sequence[Any] | None = _UNSET) -> None:
    """Set the defaults every primitive uses when it is not given its own.

    Args:
        store: The default state store: a store object or URL (``memory://``,
            ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``redis://…``,
            ``postgresql://…``). None goes back to ``RELIABLE_STORE`` or the embedded
            SQLite store under ``$XDG_STATE_HOME/reliable/state.db``.
        alerts: The alert sinks of `reliable.alerts`; None goes back to the default (log).

    Raises:
        ConfigError: *store* is neither a store nor a string.

    Omitted arguments keep their current value.

    .. versionadded:: 0.1.0
    """
    global _config
    changes: dict[str, Any] = {}
    if store is not _UNSET:
        if store is not None and not isinstance(store, (str, Store)):
            msg = f"store={store!r} is not a store; pass a Store object or a URL such as 'sqlite:///state.db'"
            raise ConfigError(msg, parameter="store", value=store)
        if isinstance(store, str):
            _validate_url(store)
        changes["store"] = store
    if alerts is not _UNSET:
        changes["alerts"] = None if alerts is None else tuple(alerts)
    with _lock:
        _config = replace(_config, **changes)


def _validate_url(url: str) -> None:
    from .stores._open import SCHEMES

    if not url.lower().startswith(SCHEMES):
        msg = f"store URL {url!r} has an unknown scheme; use one of {', '.join(SCHEMES)}"
        raise ConfigError(msg, parameter="store", value=url)


def default_store() -> Store:
    """The store primitives use when not given one, opened on first use and kept open."""
    config = _config
    chosen = config.store
    if chosen is None:
        chosen = os.environ.get("RELIABLE_STORE") or None
    if chosen is None:
        from .stores._open import default_path

        chosen = "sqlite:///" + str(default_path())
    if not isinstance(chosen, str):
        return chosen
    return _opened(chosen)


def _opened(url: str) -> Store:
    store = _config.opened.get(url)
    if store is None:
        with _lock:
            store = _config.opened.get(url)
            if store is None:
                store = open_store(url)
                _config.opened[url] = store
    return store


def resolve_store(store: StoreLike | None) -> Store:
    """The store a primitive should use: its own *store* argument, else the configured default."""
    if store is None:
        return default_store()
    if isinstance(store, str):
        return _opened(store)
    return store


def alert_sinks() -> tuple[Any, ...] | None:
    """The configured alert sinks, or None for the default."""
    return _config.alerts


@contextmanager
def configured(*, store: StoreLike | None = _UNSET, alerts: Sequence[Any] | None = _UNSET) -> Iterator[None]:
    """Apply `configure` inside the ``with`` block only, then restore the previous configuration."""
    global _config
    with _lock:
        previous = _config
    configure(store=store, alerts=alerts)
    try:
        yield
    finally:
        with _lock:
            _config = replace(previous, opened=_config.opened)
