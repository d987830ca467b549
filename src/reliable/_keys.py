"""Idempotency keys: canonical JSON of a call's arguments, hashed into a stable store key.

`canonical` turns a value into one deterministic JSON text: equal values of the same kind
give the same text in every process, on every host, in every Python version. Dictionaries
and sets are sorted; dataclasses, UUIDs, datetimes, Decimals, Enums, paths and bytes have
tagged encodings (``{"$uuid": "..."}``), so they never collide with a plain string. A list
and a tuple with the same items encode alike. Anything else raises `TypeError`; the caller
turns that into a `reliable.ConfigError` that names the argument and tells the user to pass
``key=``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import hashlib
import inspect
import json
import math
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from ._errors import ConfigError

__all__ = ["Binder", "Keyer", "arguments_text", "canonical", "digest", "store_key"]

PREFIX = "idempotent:"
"""Every idempotency record's store key starts with this."""

MAX_KEY = 250
"""Store keys longer than this are hashed (the stores accept 1,024 characters)."""


def compact_encoder(*, sort_keys: bool) -> Callable[[Any], str]:
    """A compact JSON encoder (no NaN, non-ASCII kept), built once: ``json.dumps`` rebuilds it on every call."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C accelerator
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys, allow_nan=False).encode

    def unsupported(value: Any) -> Any:
        raise TypeError(f"{type(value).__qualname__} is not JSON-serializable")

    chunks = make(None, unsupported, json.encoder.encode_basestring, None, ":", ",", sort_keys, False, False)
    return lambda value: "".join(chunks(value, 0))


_encode = compact_encoder(sort_keys=True)
_MEMO_TYPES = frozenset((str, int, type(None)))
_MEMO_MAX = 1024
_MEMO_TEXT_MAX = 512
_SCALARS = (str, int, type(None))
_FAST = frozenset((str, int, bool, type(None)))


def canonical(value: Any, *, lenient: bool = False) -> str:
    """The canonical JSON text of *value*.

    Args:
        value: The value to encode.
        lenient: Encode values that have no canonical form as their type's name
            instead of raising (used for argument fingerprints, never for keys).

    Returns:
        Deterministic, compact JSON text.

    Raises:
        TypeError: *value* contains something without a canonical form (and not *lenient*).
    """
    return _encode(_tree(value, lenient))


def arguments_text(bound: dict[str, Any], *, lenient: bool = False) -> str:
    """`canonical` of bound arguments (parameter names never start with ``$``), fast for plain scalars."""
    for value in bound.values():
        if type(value) not in _FAST:
            return _encode(_tree(bound, lenient))
    return _encode(bound)


def digest(text: str) -> str:
    """A short, stable hash of *text* (BLAKE2b, 128 bits, hex)."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def store_key(namespace: str, key: str) -> str:
    """The store key of the user key *key* in *namespace*, hashed when it would be too long."""
    full = f"{PREFIX}{namespace}:{key}"
    if len(full) <= MAX_KEY:
        return full
    return f"{PREFIX}{namespace[:100]}:#{digest(namespace + chr(0) + key)}"


def _name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _tree(value: Any, lenient: bool) -> Any:
    kind = type(value)
    if kind in _SCALARS or kind is bool:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, enum.Enum):  # before str/int: StrEnum and IntEnum are both
        return {"$enum": _name(kind), "name": value.name}
    if isinstance(value, (list, tuple)):
        return [_tree(item, lenient) for item in value]
    if isinstance(value, Mapping):
        return _mapping(value, lenient)
    if isinstance(value, (set, frozenset)):
        return {"$set": sorted((_tree(item, lenient) for item in value), key=_encode)}
    if isinstance(value, str):  # subclasses of the scalars encode as the scalar
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return _tree(float.__float__(value), lenient)
    return _tagged(value, kind, lenient)


def _mapping(value: Mapping[Any, Any], lenient: bool) -> Any:
    if all(type(k) is str and not k.startswith("$") for k in value):
        return {k: _tree(v, lenient) for k, v in value.items()}
    pairs = [[_tree(k, lenient), _tree(v, lenient)] for k, v in value.items()]
    return {"$dict": sorted(pairs, key=_encode)}


def _tagged(value: Any, kind: type, lenient: bool) -> Any:
    if dataclasses.is_dataclass(value):
        fields = {f.name: _tree(getattr(value, f.name), lenient) for f in dataclasses.fields(value)}
        return {"$dataclass": _name(kind), "fields": fields}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(dt.timezone.utc)
            return {"$datetime": value.replace(tzinfo=None).isoformat() + "Z"}
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {"$decimal": str(value.normalize()) if value.is_finite() else str(value)}
    if isinstance(value, PurePath):
        return {"$path": value.as_posix()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return {"$model": _name(kind), "data": _tree(dump(), lenient)}
    if lenient:
        return {"$opaque": _name(kind)}
    msg = f"{_name(kind)} has no canonical form"
    raise TypeError(msg)


class Binder:
    """Binds a call's arguments to a function's parameters, with defaults applied.

    ``f(1, b=2)`` and ``f(a=1, b=2)`` bind to the same ``{"a": 1, "b": 2}``. The common
    case (positional arguments only, one per parameter) skips `inspect.Signature.bind`.
    """

    __slots__ = ("_fast", "_names", "_signature")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._signature = inspect.signature(fn)
        params = list(self._signature.parameters.values())
        simple = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._names = tuple(p.name for p in params)
        self._fast = all(p.kind in simple for p in params)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The arguments by parameter name; raises `TypeError` as calling the function would."""
        if self._fast and not kwargs and len(args) == len(self._names):
            return dict(zip(self._names, args, strict=True))
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)


class Keyer:
    """Computes a call's store key and argument fingerprint, raising `ConfigError` before any side effect.

    Args:
        operation: The namespace (``module.qualname`` or ``name=``).
        fn: The decorated function, whose signature binds the arguments.
        key: A callable over the function's arguments returning the key, or None for a
            hash of the bound arguments.
        fingerprint: True for a hash of all bound arguments, False for none, or a callable
            over the arguments returning the value to compare.
    """

    __slots__ = ("_binder", "_fingerprint", "_key", "_memo", "_operation")

    def __init__(
        self,
        operation: str,
        fn: Callable[..., Any],
        key: Callable[..., Any] | None,
        fingerprint: bool | Callable[..., Any],
    ) -> None:
        self._operation = operation
        self._binder = Binder(fn)
        self._key = key
        self._fingerprint = fingerprint
        self._memo: dict[tuple[Any, ...], tuple[str, str | None]] = {}
        """Recent positional-only calls whose arguments are all str/int/None: what `_hashed` made of them."""

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str | None]:
        """``(store key, fingerprint or None)`` for a call with *args* and *kwargs*."""
        check = self._fingerprint
        if check is True and not kwargs:  # the common case: a replay of the same arguments hashes nothing
            for value in args:
                if type(value) not in _MEMO_TYPES:  # exact types: 1 == True == 1.0 must not share an entry
                    break
            else:
                user = None if self._key is None else self._user_key(args, kwargs)
                hit = self._memo.get(args)
                if hit is None:
                    hit = self._hashed(args, kwargs)
                return hit if user is None else (store_key(self._operation, user), hit[1])
        if self._key is None:
            bound = self._binder.bind(args, kwargs)
            try:
                hashed = digest(arguments_text(bound))
            except TypeError:
                raise self._unkeyable(bound) from None
            if check is True:
                return store_key(self._operation, hashed), hashed
            return store_key(self._operation, hashed), self._custom_fingerprint(args, kwargs)
        user = self._user_key(args, kwargs)
        if check is True:
            fingerprint: str | None = digest(arguments_text(self._binder.bind(args, kwargs), lenient=True))
        else:
            fingerprint = self._custom_fingerprint(args, kwargs)
        return store_key(self._operation, user), fingerprint

    def _hashed(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str | None]:
        """``(store key of the hashed arguments, their hash)``, remembered for small plain *args*."""
        bound = self._binder.bind(args, kwargs)
        try:
            text = arguments_text(bound)
        except TypeError:  # pragma: no cover - str/int/None always encode
            raise self._unkeyable(bound) from None
        hashed = digest(text)
        made = (store_key(self._operation, hashed), hashed)
        if len(text) <= _MEMO_TEXT_MAX:
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            self._memo[args] = made
        return made

    def _user_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        assert self._key is not None
        user = self._key(*args, **kwargs)
        if type(user) is not str or not user:
            user = self._key_text(user)
        return user

    def _custom_fingerprint(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        check = self._fingerprint
        if not callable(check):
            return None
        value = check(*args, **kwargs)
        try:
            return digest(canonical(value))
        except TypeError as exc:
            msg = (
                f"fingerprint= of {self._operation!r} returned a {type(value).__qualname__} that cannot be "
                f"compared ({exc}); return str, numbers, dicts, lists, dataclasses and the like"
            )
            raise ConfigError(msg, parameter="fingerprint", operation=self._operation) from None

    def _key_text(self, user: Any) -> str:
        if user is None or user == "":
            msg = (
                f"key= of {self._operation!r} returned {user!r}, so this call cannot be protected; "
                f"return a str (or number) that identifies the request"
            )
            raise ConfigError(msg, parameter="key", operation=self._operation)
        try:
            text = canonical(user)
        except TypeError as exc:
            msg = f"key= of {self._operation!r} returned a {type(user).__qualname__} ({exc}); return a str"
            raise ConfigError(msg, parameter="key", operation=self._operation) from None
        return text

    def _unkeyable(self, bound: dict[str, Any]) -> ConfigError:
        for name, value in bound.items():
            try:
                canonical(value)
            except TypeError as exc:
                msg = (
                    f"argument {name!r} of {self._operation!r} ({type(value).__qualname__}) cannot be part of an "
                    f"idempotency key: {exc}; pass key=lambda ...: ... to say what identifies the request"
                )
                return ConfigError(msg, parameter="key", operation=self._operation, argument=name)
        return ConfigError(f"the arguments of {self._operation!r} cannot be hashed; pass key=", parameter="key")
