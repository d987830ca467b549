"""The pytest plugin's settings: marker over command line over ini file, each bad value naming its source."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

import pytest

__all__ = ["MARKER_HELP", "SETTINGS", "Settings", "item_settings", "session_settings"]

MARKER = "reliable_faults"
MARKER_HELP = (
    "reliable_faults(seed=None, rate=None, backend=None, store=None, latency=None, forbid_sleep=None, max_sleep=None): "
    "settings of the reliable fixtures for this test, over the command line and ini file. "
    "*seed* seeds every random fault; *rate* (0..1) is the default probability of Faults.random() and "
    "FaultyStore.flaky(); *backend* ('memory' or 'sqlite') is reliable_store's backend; *store* "
    "('healthy', 'unavailable', 'flaky' or 'slow') is the mode reliable_store starts in, *latency* the "
    "seconds of 'slow'; *forbid_sleep* and *max_sleep* control the real-sleep guard."
)
BACKENDS = ("memory", "sqlite")
MODES = ("healthy", "unavailable", "flaky", "slow")


@dataclass(frozen=True)
class Settings:
    """The settings of one test (or the session's defaults)."""

    seed: int = 0
    rate: float = 0.1
    backend: str = "memory"
    store_mode: str = "healthy"
    latency: float = 1.0
    forbid_sleep: bool = False
    max_sleep: float = 0.05
    random_seed: bool = False

    def describe(self) -> str:
        seed = f"seed={self.seed}" + (f" (random; repeat with --reliable-seed={self.seed})" if self.random_seed else "")
        guard = f"on (> {self.max_sleep:g}s fails)" if self.forbid_sleep else "off"
        return f"{seed}, fault rate={self.rate:g}, store={self.backend}, forbid sleep={guard}"


SETTINGS = pytest.StashKey[Settings]()


def session_settings(config: pytest.Config) -> Settings:
    """The command line's settings, else the ini file's, else the defaults. Raises `ValueError` naming the source."""
    settings = Settings()
    shared = getattr(config, "workerinput", {}).get("reliable_seed")
    value, where = _pick(config, "reliable_seed", "--reliable-seed")
    if shared is not None:  # a pytest-xdist worker: the controller chose the seed (also a random one)
        settings = replace(settings, seed=int(shared), random_seed=str(value).strip().lower() == "random")
    elif value is not None:
        if str(value).strip().lower() == "random":
            settings = replace(settings, seed=int.from_bytes(os.urandom(4), "big"), random_seed=True)
        else:
            settings = replace(settings, seed=_seed(value, where))
    value, where = _pick(config, "reliable_fault_rate", "--reliable-fault-rate")
    if value is not None:
        settings = replace(settings, rate=_rate(value, where))
    value, where = _pick(config, "reliable_store", "--reliable-store")
    if value is not None:
        settings = replace(settings, backend=_choice(value, where, "store backend", BACKENDS))
    value, where = _pick(config, "reliable_forbid_sleep", "--reliable-forbid-sleep")
    if value is not None:
        settings = replace(settings, forbid_sleep=bool(value))
    value, where = _pick(config, "reliable_max_sleep", "--reliable-max-sleep")
    if value is not None:
        settings = replace(settings, max_sleep=_seconds(value, where, "max sleep"))
    return settings


def item_settings(item: pytest.Item) -> Settings:
    """The session's settings with the test's ``reliable_faults`` marker applied over them."""
    settings = item.config.stash.get(SETTINGS, None) or Settings()
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return settings
    where = f"marker on {item.name}"
    if marker.args:
        msg = f"Invalid positional arguments {marker.args!r} from {where}; the marker takes keywords only, e.g. seed=7"
        raise ValueError(msg)
    parsers: dict[str, Any] = {
        "seed": lambda v: {"seed": _seed(v, where), "random_seed": False},
        "rate": lambda v: {"rate": _rate(v, where)},
        "backend": lambda v: {"backend": _choice(v, where, "store backend", BACKENDS)},
        "store": lambda v: {"store_mode": _choice(v, where, "store mode", MODES)},
        "latency": lambda v: {"latency": _seconds(v, where, "latency")},
        "forbid_sleep": lambda v: {"forbid_sleep": _flag(v, where, "forbid_sleep")},
        "max_sleep": lambda v: {"max_sleep": _seconds(v, where, "max sleep")},
    }
    for name, value in marker.kwargs.items():
        parse = parsers.get(name)
        if parse is None:
            msg = f"Invalid argument {name}={value!r} from {where}; expected some of {', '.join(parsers)}"
            raise ValueError(msg)
        if value is not None:
            settings = replace(settings, **parse(value))
    return settings


def _pick(config: pytest.Config, ini: str, option: str) -> tuple[Any, str]:
    value = config.getoption(ini, None)
    if value is not None:
        return value, option
    value = config.getini(ini)
    source = f"ini option {ini}" + (f" in {config.inipath.name}" if config.inipath else "")
    return (None if value in (None, "") else value), source


def _seed(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"Invalid seed {value} from {where}; expected an integer or 'random'")
    try:
        return int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(f"Invalid seed {value} from {where}; expected an integer or 'random'") from None


def _rate(value: Any, where: str) -> float:
    rate = _float(value)
    if rate is None or not 0 <= rate <= 1:
        raise ValueError(f"Invalid fault rate {value} from {where}; expected 0..1")
    return rate


def _seconds(value: Any, where: str, what: str) -> float:
    amount = _float(value)
    if amount is None or amount < 0:
        raise ValueError(f"Invalid {what} {value} from {where}; expected seconds >= 0")
    return amount


def _choice(value: Any, where: str, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"Invalid {what} {value} from {where}; expected one of {', '.join(choices)}")
    return str(value)


def _flag(value: Any, where: str, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"Invalid {what} {value} from {where}; expected True or False")
    return value


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number
