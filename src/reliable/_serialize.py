"""Result serializers of `reliable.idempotent`: JSON with type information by default, pickle on request.

A serializer turns a result into something the store can keep (JSON-compatible data or
``bytes``) and back. The default, `JSONSerializer`, records enough type information that a
replay returns what the first call returned: a dataclass comes back as that dataclass, a
tuple as a tuple, a ``datetime`` as a ``datetime``. Classes are found again by their module
and qualified name, so they must be importable (not defined inside a function).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import importlib
import math
import pathlib
import pickle
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

__all__ = ["JSONSerializer", "PickleSerializer", "Serializer"]


@runtime_checkable
class Serializer(Protocol):
    """What `reliable.idempotent` needs to store results.

    ``dumps`` returns JSON-compatible data (dicts with str keys, lists, str, int, float,
    bool, None) or ``bytes``, and raises `TypeError` or `ValueError` for a value it
    cannot represent; ``loads`` takes that back to the value.

    .. versionadded:: 0.1.0
    """

    def dumps(self, value: Any) -> Any: ...

    def loads(self, data: Any) -> Any: ...


class PickleSerializer:
    """Pickle: any picklable result. Opt in with ``serializer="pickle"``.

    Only use it with a store that nobody untrusted can write to: loading a pickle can run
    arbitrary code.

    .. versionadded:: 0.1.0
    """

    def dumps(self, value: Any) -> bytes:
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # PicklingError, AttributeError for local objects, ...
            raise TypeError(f"cannot pickle {type(value).__qualname__}: {exc}") from exc

    def loads(self, data: Any) -> Any:
        return pickle.loads(data)

    def __repr__(self) -> str:
        return "PickleSerializer()"


class JSONSerializer:
    """JSON with type information, so a replay returns the type the first call returned.

    Handles JSON's own types exactly (a list stays a list), plus tuples, named tuples,
    sets, frozensets, dicts with non-string keys, bytes, ``datetime``/``date``/``time``/
    ``timedelta``, `Decimal`, `UUID`, `Enum`, paths, dataclasses, and objects with
    ``model_dump()`` whose class has ``model_validate()`` (pydantic v2 models).

    >>> s = JSONSerializer()
    >>> s.loads(s.dumps((1, {2, 3}, Decimal("1.5"))))
    (1, {2, 3}, Decimal('1.5'))

    .. versionadded:: 0.1.0
    """

    def dumps(self, value: Any) -> Any:
        return _dump(value)

    def loads(self, data: Any) -> Any:
        return _load(data)

    def __repr__(self) -> str:
        return "JSONSerializer()"


_PLAIN = (str, int, bool, type(None))


def _dump(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
    if kind is list:
        return [_dump(item) for item in value]
    if kind is dict:
        if all(type(k) is str for k in value) and "$" not in value:
            return {k: _dump(v) for k, v in value.items()}
        return {"$": "dict", "v": [[_dump(k), _dump(v)] for k, v in value.items()]}
    if kind is tuple:
        return {"$": "tuple", "v": [_dump(item) for item in value]}
    if kind in (set, frozenset):
        return {"$": kind.__name__, "v": [_dump(item) for item in value]}
    simple = _SIMPLE.get(kind)
    if simple is not None:
        return {"$": simple[0], "v": simple[1](value)}
    return _dump_class(value, kind)


def _dump_class(value: Any, kind: type) -> Any:
    if isinstance(value, enum.Enum):
        return {"$": "enum", "type": _path(kind), "v": _dump(value.value)}
    if dataclasses.is_dataclass(value):
        fields = {f.name: _dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$": "dataclass", "type": _path(kind), "v": fields}
    if isinstance(value, tuple) and hasattr(kind, "_fields"):
        return {"$": "namedtuple", "type": _path(kind), "v": [_dump(item) for item in value]}
    if isinstance(value, pathlib.PurePath):
        return {"$": "path", "type": _path(kind), "v": str(value)}
    if callable(getattr(value, "model_dump", None)) and callable(getattr(kind, "model_validate", None)):
        return {"$": "model", "type": _path(kind), "v": _dump(value.model_dump())}
    msg = f"{kind.__module__}.{kind.__qualname__} is not JSON-serializable with type information"
    raise TypeError(msg)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


_SIMPLE: dict[type, tuple[str, Callable[[Any], Any]]] = {
    bytes: ("bytes", _b64),
    bytearray: ("bytearray", _b64),
    dt.datetime: ("datetime", dt.datetime.isoformat),
    dt.date: ("date", dt.date.isoformat),
    dt.time: ("time", dt.time.isoformat),
    dt.timedelta: ("timedelta", lambda v: [v.days, v.seconds, v.microseconds]),
    Decimal: ("decimal", str),
    uuid.UUID: ("uuid", str),
}

_LOADERS: dict[str, Callable[[Any], Any]] = {
    "float": float,
    "tuple": lambda v: tuple(_load(i) for i in v),
    "set": lambda v: {_load(i) for i in v},
    "frozenset": lambda v: frozenset(_load(i) for i in v),
    "dict": lambda v: {_load(k): _load(x) for k, x in v},
    "bytes": base64.b64decode,
    "bytearray": lambda v: bytearray(base64.b64decode(v)),
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "decimal": Decimal,
    "uuid": uuid.UUID,
}


_LEAVES = frozenset((str, int, float, bool, type(None)))
"""Decoded JSON values that load as themselves (checked inline: a call per leaf costs more than the copy)."""


def _load(data: Any) -> Any:
    kind = type(data)
    if kind is list:
        return [item if type(item) in _LEAVES else _load(item) for item in data]
    if kind is not dict:
        return data
    tag = data.get("$")
    if tag is None:
        return {k: v if type(v) in _LEAVES else _load(v) for k, v in data.items()}
    loader = _LOADERS.get(tag)
    if loader is not None:
        return loader(data["v"])
    cls = _resolve(data["type"])
    payload = data["v"]
    if tag == "enum" and issubclass(cls, enum.Enum):
        return cls(_load(payload))
    if tag == "dataclass" and dataclasses.is_dataclass(cls):
        return _make_dataclass(cls, {k: _load(v) for k, v in payload.items()})
    if tag == "namedtuple" and issubclass(cls, tuple):
        return cls(*(_load(item) for item in payload))
    if tag == "path" and issubclass(cls, pathlib.PurePath):
        return cls(payload)
    validate = getattr(cls, "model_validate", None)
    if tag == "model" and callable(validate):
        return validate(_load(payload))
    msg = f"stored value tagged {tag!r} names {data['type']!r}, which is not a class of that kind"
    raise TypeError(msg)


def _make_dataclass(cls: type, values: dict[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    obj = cls(**{k: v for k, v in values.items() if k in fields and fields[k].init})
    for k, v in values.items():
        if k in fields and not fields[k].init:
            object.__setattr__(obj, k, v)
    return obj


_paths: dict[type, str] = {}
_classes: dict[str, type] = {}


def _path(kind: type) -> str:
    """``module:qualname`` of *kind*, after checking that importing it finds *kind* again."""
    path = _paths.get(kind)
    if path is None:
        path = f"{kind.__module__}:{kind.__qualname__}"
        try:
            found = _resolve(path)
        except Exception:
            found = None
        if found is not kind:
            msg = f"{kind.__qualname__} cannot be found again by name ({path}); define it at module level"
            raise TypeError(msg)
        _paths[kind] = path
    return path


def _resolve(path: str) -> type:
    cls = _classes.get(path)
    if cls is None:
        module, _, qualname = path.partition(":")
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
        if not isinstance(found, type):
            raise TypeError(f"{path} is not a class")
        cls = _classes[path] = found
    return cls


def resolve(serializer: str | Serializer) -> Serializer:
    """The serializer a ``serializer=`` argument names; raises `TypeError` for anything else."""
    if serializer == "json":
        return _JSON
    if serializer == "pickle":
        return _PICKLE
    dumps, loads = getattr(serializer, "dumps", None), getattr(serializer, "loads", None)
    if not isinstance(serializer, str) and callable(dumps) and callable(loads):
        return serializer
    raise TypeError(serializer)


_JSON = JSONSerializer()
_PICKLE = PickleSerializer()
