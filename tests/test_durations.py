"""Durations accept seconds, timedeltas and short strings; anything else is a ConfigError naming the parameter."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reliable import ConfigError
from reliable._internal._durations import optional_seconds, seconds


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (1.5, 1.5),
        (timedelta(minutes=2), 120.0),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        (" 10 s ", 10.0),
    ],
)
def test_valid_durations(value: object, expected: float) -> None:
    """Numbers, timedeltas and unit strings (ms, s, m, h, d, w, combined) convert to seconds."""
    assert expected == seconds(value, "ttl")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), "7 days", "", "m5", True, None, [1]])
def test_invalid_durations_name_the_parameter(value: object) -> None:
    """Invalid values raise ConfigError naming the parameter and the accepted forms."""
    with pytest.raises(ConfigError, match=r"ttl=.* is not a valid duration.*'30s'") as info:
        seconds(value, "ttl")  # type: ignore[arg-type]

    assert "ttl" == info.value.parameter  # type: ignore[attr-defined]


def test_zero_can_be_refused() -> None:
    """allow_zero=False refuses 0 with a message asking for > 0."""
    with pytest.raises(ConfigError, match="> 0"):
        seconds(0, "lease", allow_zero=False)


def test_optional_keeps_none() -> None:
    """None stays None; other values are parsed."""
    assert (None, 60.0) == (optional_seconds(None, "x"), optional_seconds("1m", "x"))
