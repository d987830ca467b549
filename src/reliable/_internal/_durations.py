"""Parse durations given as seconds, `timedelta` or short strings ("30s", "5m", "7d", "1h30m")."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Union

from .._errors import ConfigError

Duration = Union[float, int, timedelta, str]
"""Seconds as a number, a `datetime.timedelta`, or a string such as ``"500ms"``, ``"30m"``, ``"7d"``."""

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def seconds(value: Duration, name: str, *, allow_zero: bool = True) -> float:
    """Return *value* in seconds, or raise `ConfigError` naming the parameter *name*."""
    result: float
    if isinstance(value, bool):
        result = math.nan
    elif isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = _PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            result = sum(float(n) * _UNITS[u] for n, u in parts)
        else:
            result = math.nan
    else:
        result = math.nan
    if math.isnan(result) or math.isinf(result) or result < 0 or (result == 0 and not allow_zero):
        floor = ">= 0" if allow_zero else "> 0"
        msg = (
            f"{name}={value!r} is not a valid duration; pass seconds {floor} as a number, "
            f"a timedelta, or a string such as '30s', '5m', '7d'"
        )
        raise ConfigError(msg, parameter=name, value=value)
    return result


def optional_seconds(value: Duration | None, name: str, *, allow_zero: bool = True) -> float | None:
    """Like `seconds`, but `None` stays `None`."""
    return None if value is None else seconds(value, name, allow_zero=allow_zero)
