"""configure(): the default store and alert sinks, their validation and scoped overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

import reliable
from reliable import ConfigError, _config
from reliable.stores import default_path
from reliable.stores import open as open_store
from reliable.stores.memory import MemoryStore
from reliable.stores.sqlite import SQLiteStore


@pytest.fixture(autouse=True)
def _restore_config() -> object:
    with _config.configured():
        yield


def test_default_store_is_sqlite_under_xdg_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With nothing configured, the default store is SQLite at $XDG_STATE_HOME/reliable/state.db."""
    monkeypatch.delenv("RELIABLE_STORE", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    reliable.configure(store=None)

    store = _config.default_store()

    assert isinstance(store, SQLiteStore)
    assert tmp_path / "reliable" / "state.db" == default_path()
    assert (tmp_path / "reliable" / "state.db").exists()


def test_default_path_falls_back_to_local_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without XDG_STATE_HOME the default lives under ~/.local/state/reliable/."""
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    assert tmp_path / ".local" / "state" / "reliable" / "state.db" == default_path()


def test_env_var_overrides_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """RELIABLE_STORE names the default store when configure() did not."""
    monkeypatch.setenv("RELIABLE_STORE", "memory://")
    reliable.configure(store=None)

    assert isinstance(_config.default_store(), MemoryStore)


def test_configure_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """configure(store=...) wins over RELIABLE_STORE."""
    monkeypatch.setenv("RELIABLE_STORE", "sqlite:///ignored.db")
    mine = MemoryStore()
    reliable.configure(store=mine)

    assert mine is _config.default_store()
    assert mine is _config.resolve_store(None)


def test_resolve_store_prefers_the_argument() -> None:
    """A primitive's own store= wins; a URL is opened once and reused."""
    mine = MemoryStore()

    assert mine is _config.resolve_store(mine)
    assert _config.resolve_store("memory://") is _config.resolve_store("memory://")


@pytest.mark.parametrize("bad", [42, object()])
def test_configure_rejects_non_stores(bad: object) -> None:
    """A store that is neither a Store nor a URL is a ConfigError naming the parameter."""
    with pytest.raises(ConfigError, match="store="):
        reliable.configure(store=bad)  # type: ignore[arg-type]


def test_configure_rejects_unknown_scheme_before_opening() -> None:
    """An unknown URL scheme is refused when configure() is called, naming the accepted schemes."""
    with pytest.raises(ConfigError, match="memory://, sqlite:///"):
        reliable.configure(store="mysql://x")


@pytest.mark.parametrize("url", ["mysql://host/db", "sqlite://", "sqlite:///", "memory:///x", "nonsense", 3])
def test_open_rejects_bad_urls(url: object) -> None:
    """open() raises ConfigError naming the accepted schemes for anything it cannot open."""
    with pytest.raises(ConfigError, match="memory://"):
        open_store(url)  # type: ignore[arg-type]


def test_open_sqlite_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///rel.db is relative to the working directory; sqlite:////abs.db is absolute."""
    monkeypatch.chdir(tmp_path)

    relative = open_store("sqlite:///rel.db")
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db")
    relative.close()
    absolute.close()

    assert (tmp_path / "rel.db").exists()
    assert (tmp_path / "abs.db").exists()


def test_alert_sinks_configured_and_scoped() -> None:
    """configure(alerts=...) stores the sinks; configured() restores the previous ones after the block."""
    sink = object()
    with _config.configured(alerts=[sink]):
        inside = _config.alert_sinks()

    assert ((sink,), None) == (inside, _config.alert_sinks())


@pytest.mark.parametrize(
    ("url", "driver", "extra"), [("redis://h/0", "redis", "redis"), ("postgresql://h/db", "psycopg", "postgres")]
)
def test_open_without_the_driver_names_the_extra(
    url: str, driver: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server URL whose driver is not installed is a ConfigError naming the extra to install, not an ImportError."""
    import sys

    monkeypatch.setitem(sys.modules, driver, None)
    for name in [m for m in sys.modules if m.startswith(f"reliable.stores.{extra}")]:
        monkeypatch.delitem(sys.modules, name)

    with pytest.raises(ConfigError, match=rf"pip install 'reliable\[{extra}\]'"):
        open_store(url)
