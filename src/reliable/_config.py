"""`configure()`: the default store and alert sinks, the only global state besides the clock."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Union

from ._errors import ConfigError
from .stores import Store
from .stores import open as open_store

__all__ = ["StoreLike", "alert_sinks", "configure", "configured", "default_store", "lock_settings", "resolve_store"]

StoreLike = Union[Store, str]
"""A store object, or a store URL such as ``"sqlite:////var/lib/myjob/state.db"``."""

_UNSET: Any = object()


@dataclass(frozen=True)
class _Config:
    store: Store | str | None = None
    alerts: tuple[Any, ...] | None = None
    opened: dict[str, Store] = field(default_factory=dict)
    lock_dir: str | None = None
    locks: str = "file"
    lock_network_fs: str = "warn"


_lock = threading.RLock()
_config = _Config()


def configure(
    *,
    store: StoreLike | None = _UNSET,
    alerts: Sequence[Any] | None = _UNSET,
    lock_dir: str | os.PathLike[str] | None = _UNSET,
    locks: str = _UNSET,
    lock_network_fs: str = _UNSET,
) -> None:
    """Set the defaults every primitive uses when it is not given its own.

    Args:
        store: The default state store: a store object or URL (``memory://``,
            ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``redis://…``,
            ``postgresql://…``). None goes back to ``RELIABLE_STORE`` or the embedded
            SQLite store under ``$XDG_STATE_HOME/reliable/state.db``.
        alerts: The alert sinks of `reliable.alerts`; None goes back to the default (log).
        lock_dir: The directory of `reliable.single_instance` lock files; None goes back to
            ``RELIABLE_LOCK_DIR`` or ``$XDG_STATE_HOME/reliable/locks``.
        locks: ``"file"`` (the default: ``flock`` on this host) or ``"store"`` (leases in the
            configured store, for locks across hosts) for `single_instance` calls without *store*.
        lock_network_fs: What a lock directory on NFS, SMB or FUSE does: ``"warn"`` (the
            default), ``"refuse"`` (raise `ConfigError`) or ``"allow"``.

    Raises:
        ConfigError: *store* is neither a store nor a string, or a lock setting is invalid.

    Omitted arguments keep their current value.

    .. versionadded:: 0.1.0
    """
    global _config
    changes: dict[str, Any] = {}
    if store is not _UNSET:
        check_store_option(store, lambda obj: isinstance(obj, Store))
        changes["store"] = store
    if alerts is not _UNSET:
        changes["alerts"] = None if alerts is None else tuple(alerts)
    changes.update(_lock_changes(lock_dir, locks, lock_network_fs))
    with _lock:
        _config = replace(_config, **changes)


def _lock_changes(lock_dir: Any, locks: Any, network_fs: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if lock_dir is not _UNSET:
        if lock_dir is not None and (not isinstance(lock_dir, (str, os.PathLike)) or not os.fspath(lock_dir)):
            msg = f"lock_dir={lock_dir!r} is not a directory path; pass a str or pathlib.Path, or None for the default"
            raise ConfigError(msg, parameter="lock_dir", value=lock_dir)
        changes["lock_dir"] = None if lock_dir is None else os.fsdecode(os.fspath(lock_dir))
    for param, value, allowed in (("locks", locks, ("file", "store")), ("lock_network_fs", network_fs, _NET)):
        if value is not _UNSET:
            if value not in allowed:
                msg = f"{param}={value!r} is not one of {', '.join(map(repr, allowed))}; pass one of them"
                raise ConfigError(msg, parameter=param, value=value)
            changes[param] = value
    return changes


_NET = ("warn", "refuse", "allow")


def lock_settings() -> tuple[str | None, str, str]:
    """``(lock_dir, locks, lock_network_fs)`` as configured, for `reliable.single_instance`."""
    config = _config
    return config.lock_dir, config.locks, config.lock_network_fs


def check_store_option(store: object, looks_like_store: Callable[[object], bool]) -> None:
    """Raise `ConfigError` unless *store* is None, a store URL with a known scheme, or passes *looks_like_store*."""
    if store is not None and not isinstance(store, str) and not looks_like_store(store):
        msg = f"store={store!r} is not a store; pass a Store object, a URL such as 'sqlite:///state.db', or None"
        raise ConfigError(msg, parameter="store", value=store)
    if isinstance(store, str):
        _validate_url(store)


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
def configured(
    *,
    store: StoreLike | None = _UNSET,
    alerts: Sequence[Any] | None = _UNSET,
    lock_dir: str | os.PathLike[str] | None = _UNSET,
    locks: str = _UNSET,
    lock_network_fs: str = _UNSET,
) -> Iterator[None]:
    """Apply `configure` inside the ``with`` block only, then restore the previous configuration."""
    global _config
    with _lock:
        previous = _config
    configure(store=store, alerts=alerts, lock_dir=lock_dir, locks=locks, lock_network_fs=lock_network_fs)
    try:
        yield
    finally:
        with _lock:
            _config = replace(previous, opened=_config.opened)
