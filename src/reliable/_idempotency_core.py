"""The pure core of `reliable.idempotent`: the record format and what a caller does next.

Nothing here touches a store, a clock or a thread; the sync and async drivers in
``_idempotent.py`` do the I/O and ask this module what each record means.

A record is compact JSON bytes, in one of two shapes::

    {"status": "IN_PROGRESS", "owner": "host:4242:7", "fp": "<args hash>", "lease": 60.0}
    {"status": "COMPLETED", "fp": "<args hash>", "result": <serialized result>}

An IN_PROGRESS record is a claim: it is written with the store TTL set to the lease, so it
vanishes by itself when its holder dies, and the next caller's create-if-absent succeeds. A
COMPLETED record lives for ``ttl``. It may hold ``"result_b64"`` (a serializer that returns
bytes), ``"error"`` (an exception type listed in ``cache_errors``), or ``"unstored"`` (the
function ran but its result could not be stored; the reason is kept).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._errors import IdempotencyConflictError, IdempotencyError, InProgressError, LeaseLostError
from ._keys import compact_encoder
from ._serialize import JSONSerializer, Serializer, _resolve
from .stores import Record

__all__ = ["COMPLETED", "IN_PROGRESS", "Call", "Policy", "Step", "decide", "judge", "poll_delay"]

IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"

RUN, REPLAY, BUSY = "run", "replay", "busy"

_dumps = compact_encoder(sort_keys=False)
_loads = json.loads
_PARSED_MAX = 1024
_PARSED_VALUE_MAX = 4096
_parsed: dict[bytes, dict[str, Any]] = {}
"""Recently parsed small records by their bytes: a replay of a hot key parses nothing (records are immutable)."""
_errors_json = JSONSerializer()
_tuple_new = tuple.__new__


@dataclass(frozen=True)
class Policy:
    """What one ``@idempotent(...)`` (or one ``idempotency(...)`` block) was configured with."""

    operation: str
    ttl: float | None
    lease: float
    wait: bool
    cache_errors: tuple[type[BaseException], ...]
    serializer: Serializer
    max_result_bytes: int


class Call(NamedTuple):
    """One call: its store key, its argument fingerprint (None: not checked) and its owner id."""

    key: str
    fingerprint: str | None
    owner: str


class Step(NamedTuple):
    """What to do with a record: ``run`` the function, ``replay`` *data*, or wait while ``busy``."""

    action: str
    data: dict[str, Any] | None = None


def shown(policy: Policy, call: Call) -> str:
    """The key as the user gave it (the store key without its ``idempotent:<name>:`` prefix), for messages."""
    prefix = f"idempotent:{policy.operation}:"
    return call.key[len(prefix) :] if call.key.startswith(prefix) else call.key


def claim(policy: Policy, call: Call) -> bytes:
    """The IN_PROGRESS record this call writes to claim its key (built as text: every call pays for it)."""
    fp = "null" if call.fingerprint is None else f'"{call.fingerprint}"'
    owner = _dumps(call.owner)
    return f'{{"status":"IN_PROGRESS","owner":{owner},"fp":{fp},"lease":{policy.lease!r}}}'.encode()


def parse(value: Any) -> dict[str, Any] | None:
    """The record dict stored in *value*, or None if it is not an idempotency record. Do not mutate it."""
    if type(value) is bytes:
        cached = _parsed.get(value)
        if cached is not None:
            return cached
    try:
        data = _loads(value) if isinstance(value, (bytes, str)) else value
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("status") not in (IN_PROGRESS, COMPLETED):
        return None
    if type(value) is bytes and len(value) <= _PARSED_VALUE_MAX:
        if len(_parsed) >= _PARSED_MAX:
            _parsed.clear()
        _parsed[value] = data
    return data


def decide(policy: Policy, call: Call, record: Record, created: bool) -> Step:
    """What a caller does after claiming (``created``) or finding *record*.

    Raises:
        IdempotencyConflictError: the record was written for other arguments.
        InProgressError: another caller holds the key and the policy says not to wait.
        IdempotencyError: the key holds something that is not an idempotency record.
    """
    if created:
        return Step(RUN)
    data = parse(record.value)
    if data is None:
        msg = (
            f"store key {shown(policy, call)!r} holds a record that is not an idempotency record; "
            f"another component uses this key: pass a different name= or key="
        )
        raise IdempotencyError(msg, key=call.key, operation=policy.operation)
    return judge(policy, call, data, record.expires_at)


def judge(policy: Policy, call: Call, data: dict[str, Any], expires_at: float | None) -> Step:
    """`decide` for a parsed record: check the fingerprint, then replay, or wait while in progress."""
    stored = data.get("fp")
    if stored is not None and call.fingerprint is not None and stored != call.fingerprint:
        raise conflict(policy, call, data)
    if data["status"] == COMPLETED:
        return _tuple_new(Step, (REPLAY, data))  # Step(REPLAY, data) without the named tuple's Python-level __new__
    if not policy.wait:
        raise in_progress(policy, call, data.get("owner"), expires_at)
    return Step(BUSY, data)


def conflict(policy: Policy, call: Call, data: dict[str, Any]) -> IdempotencyConflictError:
    state = "completed" if data["status"] == COMPLETED else "in progress"
    msg = (
        f"idempotency key {shown(policy, call)!r} of {policy.operation!r} was used ({state}) with different arguments; "
        f"use a new key for a new request, or pass fingerprint=None to allow it"
    )
    return IdempotencyConflictError(msg, key=call.key, operation=policy.operation)


def in_progress(
    policy: Policy, call: Call, owner: Any, expires_at: float | None, *, reentrant: bool = False
) -> InProgressError:
    if reentrant:
        msg = (
            f"{policy.operation!r} was called again with key {shown(policy, call)!r} from inside its own call "
            f"(or blocking the event loop its holder runs on); waiting would never end: use another key"
        )
    else:
        msg = (
            f"{policy.operation!r} is already running for key {shown(policy, call)!r} (held by {owner!r}); "
            f"retry later, or pass on_in_progress='wait' to wait for its result"
        )
    return InProgressError(msg, key=call.key, operation=policy.operation, owner=owner, expires_at=expires_at)


def lease_lost(policy: Policy, call: Call, result: Any) -> LeaseLostError:
    msg = (
        f"the claim of {call.owner!r} on key {shown(policy, call)!r} of {policy.operation!r} expired and another "
        f"caller took it over before the result was stored; the result was not saved (see .result). "
        f"Pass a longer lease= if the function can block longer than the lease"
    )
    return LeaseLostError(msg, key=call.key, name=policy.operation, owner=call.owner, result=result)


def complete(policy: Policy, call: Call, result: Any) -> tuple[bytes, dict[str, Any], str | None]:
    """The COMPLETED record for *result* (encoded and as a dict), and why the result could not be stored (or None).

    The record is always COMPLETED: the function has run, so its effect must not run again.
    """
    head: dict[str, Any] = {"status": COMPLETED, "fp": call.fingerprint}
    try:
        data = policy.serializer.dumps(result)
        if isinstance(data, (bytes, bytearray, memoryview)):
            head["result_b64"] = base64.b64encode(bytes(data)).decode()
        else:
            head["result"] = data
        encoded = _dumps(head).encode()
    except Exception as exc:
        reason = f"{type(result).__qualname__} result cannot be serialized by {policy.serializer!r}: {exc}"
    else:
        if len(encoded) <= policy.max_result_bytes:
            return encoded, head, None
        reason = f"the serialized result is {len(encoded)} bytes, over max_result_bytes={policy.max_result_bytes}"
    head.pop("result", None)
    head.pop("result_b64", None)
    head["unstored"] = reason
    return _dumps(head).encode(), head, reason


def complete_error(policy: Policy, call: Call, exc: BaseException) -> tuple[bytes, dict[str, Any]]:
    """The COMPLETED record of an exception whose type is listed in ``cache_errors``."""
    kind = type(exc)
    try:
        args = _errors_json.dumps(exc.args)
        _dumps(args)
    except Exception:
        args = _errors_json.dumps((str(exc),))
    error = {"type": f"{kind.__module__}:{kind.__qualname__}", "args": args, "message": str(exc)}
    data = {"status": COMPLETED, "fp": call.fingerprint, "error": error}
    return _dumps(data).encode(), data


def replay(policy: Policy, call: Call, data: dict[str, Any]) -> tuple[Any, str | None]:
    """The result a COMPLETED record holds, and the reason it holds none (or None).

    Raises:
        BaseException: the recorded exception, rebuilt, when the record holds one.
        IdempotencyError: the stored result cannot be decoded any more.
    """
    if "error" in data:
        raise _rebuild(policy, call, data["error"])
    if "unstored" in data:
        return None, str(data["unstored"])
    try:
        if "result_b64" in data:
            return policy.serializer.loads(base64.b64decode(data["result_b64"])), None
        return policy.serializer.loads(data.get("result")), None
    except Exception as exc:
        msg = (
            f"the stored result of {policy.operation!r} for key {shown(policy, call)!r} cannot be decoded ({exc}); "
            f"its class moved or changed, or the serializer changed: delete the record or pass a new name="
        )
        raise IdempotencyError(msg, key=call.key, operation=policy.operation) from exc


def _rebuild(policy: Policy, call: Call, error: dict[str, Any]) -> BaseException:
    try:
        cls = _resolve(error["type"])
        if not issubclass(cls, policy.cache_errors):
            raise TypeError(f"{cls!r} is not in cache_errors")
        return cls(*_errors_json.loads(error["args"]))
    except Exception:
        msg = f"{policy.operation!r} raised {error['type']} for key {shown(policy, call)!r} earlier: {error['message']}"
        return IdempotencyError(msg, key=call.key, operation=policy.operation, error_type=error["type"])


POLL_FIRST = 0.002
POLL_MAX = 1.0


def poll_delay(attempt: int, lease: float) -> float:
    """How long a caller in another process waits before polling a busy key again.

    Doubles from 2 ms, capped at 1 s and at a quarter of the lease, so a takeover after
    the lease expires is noticed soon after.
    """
    return min(POLL_FIRST * 2.0 ** min(attempt, 30), POLL_MAX, lease / 4)
