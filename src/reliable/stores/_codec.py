"""Argument checks and value encoding shared by the backends."""

from __future__ import annotations

import json
import math
from typing import Any

from .._errors import ConfigError

MAX_KEY_LENGTH = 1024
"""Keys longer than this are refused; primitives hash long user keys before they get here."""

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_loads = json.loads
_parse = json.JSONDecoder().decode


def check_key(key: str) -> str:
    """Return *key* if it is a usable key, else raise `ConfigError`."""
    if type(key) is not str or not key or len(key) > MAX_KEY_LENGTH:
        msg = f"store key {key!r} is invalid; pass a non-empty str of at most {MAX_KEY_LENGTH} characters"
        raise ConfigError(msg, key=key)
    return key


def check_ttl(ttl: float | None) -> float | None:
    """Return *ttl* if it is None or a positive finite number of seconds, else raise `ConfigError`."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        msg = f"ttl={ttl!r} is invalid; pass seconds > 0, or None for no expiry"
        raise ConfigError(msg, ttl=ttl)
    return float(ttl)


def check_amount(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        msg = f"amount={amount!r} is invalid; pass an int"
        raise ConfigError(msg, amount=amount)
    return amount


def check_prefix(prefix: str) -> str:
    """Return *prefix* if it is a str (``''`` scans every key), else raise `ConfigError`."""
    if type(prefix) is not str:
        msg = f"prefix={prefix!r} is invalid; pass a str ('' scans every key)"
        raise ConfigError(msg, parameter="prefix", value=prefix)
    return prefix


def check_limit(limit: int | None) -> int | None:
    """Return *limit* if it is None or an int >= 0, else raise `ConfigError`."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        msg = f"limit={limit!r} is invalid; pass an int >= 0, or None for no limit"
        raise ConfigError(msg, parameter="limit", value=limit)
    return limit


def check_version(version: int) -> int:
    """Return *version* if it is an int (not a bool), else raise `ConfigError`."""
    if isinstance(version, bool) or not isinstance(version, int):
        msg = f"version={version!r} is invalid; pass the int version of a record you read"
        raise ConfigError(msg, version=version)
    return version


def encode(value: Any) -> tuple[bool, bytes]:
    """Encode *value* as ``(is_json, payload)``: bytes stay as they are, the rest is JSON text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return False, bytes(value)
    try:
        return True, _dumps(value).encode()
    except (TypeError, ValueError) as exc:
        msg = (
            f"cannot store {type(value).__name__} value {value!r:.80}: store values are bytes or JSON-encodable ({exc})"
        )
        raise ConfigError(msg, value=value) from exc


def decode(is_json: bool, payload: bytes) -> Any:
    """Inverse of `encode`."""
    if not is_json:
        return payload
    try:  # what encode wrote: UTF-8 text, parsed without json.loads' encoding detection (about half the time)
        return _parse(payload.decode())
    except ValueError:  # anything else (a BOM, UTF-16, invalid JSON): json.loads decides, or raises, as before
        return _loads(payload)
