"""The protocol of `reliable.idempotent`, written once as generators that yield I/O requests.

Each flow (`enter` here, `succeed` and `fail` in ``_idempotency_finish.py``) yields the
store operations, sleeps and in-process waits it needs as small tuples, and the sync and
async drivers in ``_idempotent.py`` carry them out (as httpx's ``Auth.auth_flow`` serves
both of its clients). Errors raised by an
operation are thrown back into the flow at the ``yield``.

Round trips: a first call is one create-if-absent (the claim) plus one compare-and-set (the
completion); a replay is the one create-if-absent, whose failure returns the record to replay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any

from . import _idempotency_core as core
from . import _idempotency_local as local
from ._errors import IdempotencyConflictError
from ._internal._telemetry import count, emit, enabled, wanted

__all__ = [
    "CAS",
    "DELETE",
    "GET",
    "HOLD",
    "PUT",
    "SLEEP",
    "STOP",
    "WAIT",
    "Claimed",
    "enter",
    "first_run",
    "lead",
    "replay_settled",
    "rest",
    "settle",
]

PUT, GET, CAS, DELETE, SLEEP, WAIT, HOLD, STOP = range(8)
"""Operation codes: ``(PUT, key, value, ttl)`` -> ``(Record, created)``; ``(GET, key)`` -> Record | None;
``(CAS, key, value, version, ttl)`` -> Record | None; ``(DELETE, key, version)`` -> bool;
``(SLEEP, seconds)``; ``(WAIT, flight)``; ``(HOLD, key, value, version, lease, operation)`` -> lease;
``(STOP, lease)`` -> the claim's current version."""

Flow = Generator[tuple[Any, ...], Any, Any]


class Claimed:
    """The outcome of `enter`: a replayed result, or a claim this caller must complete or release."""

    __slots__ = ("call", "flight", "lease", "replayed", "result")

    def __init__(self, call: core.Call, flight: local.Flight | None, lease: Any, replayed: bool, result: Any) -> None:
        self.call = call
        self.flight = flight
        self.lease = lease
        self.replayed = replayed
        self.result = result


def _report(
    policy: core.Policy, call: core.Call, event: str, message: str | Callable[[], str], level: int, **extra: Any
) -> None:
    """Emit *event*; the message and attributes are only built when a log handler, listener or span will see them."""
    if not enabled("idempotent", level):
        count("idempotent", event, policy.operation)
        return
    if not isinstance(message, str):
        message = message() if wanted("idempotent", level) else event
    attributes = {"reliable.operation": policy.operation, "reliable.idempotency_key": call.key, **extra}
    emit("idempotent", event, message, level=level, attributes=attributes)


def enter(policy: core.Policy, store: object, call: core.Call) -> Flow:
    """Claim *call*'s key, or wait for and replay the result of whoever holds it."""
    while True:
        flight, leader = local.join(store, call.key)
        if leader:
            try:
                return (yield from _lead(policy, store, call, flight))
            except BaseException:
                local.finish(store, call.key, flight)
                raise
        if flight.is_own():
            raise core.in_progress(policy, call, call.owner, None, reentrant=True)
        if not policy.wait:
            raise core.in_progress(policy, call, "another caller in this process", None)
        _report(
            policy,
            call,
            "wait",
            f"waiting for {core.shown(policy, call)!r} in this process",
            logging.INFO,
            where="process",
        )
        try:
            yield (WAIT, flight)
        except local.WouldDeadlock:
            raise core.in_progress(policy, call, call.owner, None, reentrant=True) from None
        if flight.data is not None:
            _decide_data(policy, call, flight.data)
            return _replay(policy, call, flight.data, flight)


def lead(store: object, call: core.Call) -> local.Flight | None:
    """The drivers' fast start: the flight of *call*'s key if this caller leads it in this process, else None.

    A leader writes its claim (``core.claim``) with ``put_if_absent`` and hands the outcome to
    `settle`; anyone else drives `enter`. Either way the flight must be finished if that fails.
    """
    if local.pending(store, call.key) is not None:  # `enter` stores that completion first
        return None
    flight, leader = local.join(store, call.key)
    return flight if leader else None


def settle(
    policy: core.Policy, store: object, call: core.Call, flight: local.Flight, record: Any, created: bool
) -> Claimed | core.Step:
    """After the leader's claim: the replayed outcome (the flight is finished), or the step `rest` carries on with."""
    step = _decide(policy, call, record, created)
    if step.action == core.REPLAY:
        assert step.data is not None
        local.finish(store, call.key, flight, step.data)
        return _replay(policy, call, step.data, None)
    return step


def replay_settled(policy: core.Policy, store: object, call: core.Call, record: Any) -> Claimed | None:
    """The replay of *record*, read first because this process saw *call*'s key completed (`local.settled`).

    None: the record is gone or not completed any more; the caller claims the key as usual.
    """
    data = None if record is None else core.parse(record.value)
    if data is None or data["status"] != core.COMPLETED:
        local.forget_settled(store, call.key)
        return None
    stored = data.get("fp")
    if stored is not None and stored != call.fingerprint and call.fingerprint is not None:
        _decide_data(policy, call, data)  # raises the conflict, reported
    return _replay(policy, call, data, None)


def _flush(
    policy: core.Policy, store: object, call: core.Call, flight: local.Flight, waiting: local.Pending
) -> Generator[tuple[Any, ...], Any, Claimed | None]:
    """Store the completion an earlier call of this process could not (the store was down), then replay it.

    The earlier call's claim may have expired meanwhile: if nobody took the key over, the completion
    is written anyway (the function ran); if someone did, it is dropped and None says to claim as usual.
    A store still unavailable raises, and the completion stays pending for the next call.
    """
    _decide_data(policy, call, waiting.data)  # other arguments with the same key: a conflict, as on replay
    record = yield (CAS, call.key, waiting.value, waiting.version, policy.ttl)
    if record is None:
        record = yield (GET, call.key)
        if record is None:
            record, created = yield (PUT, call.key, waiting.value, policy.ttl)
            if not created:
                record = None
        elif record.value != waiting.value:  # someone else's claim or record: ours lost the key
            record = None
    local.drop_pending(store, call.key, waiting)
    key = core.shown(policy, call)
    if record is None:
        msg = (
            f"the result of an earlier call of {policy.operation!r} for {key!r} could not be stored "
            f"before another caller took the key over"
        )
        _report(policy, call, "lease_lost", msg, logging.WARNING)
        return None
    msg = f"stored the result of an earlier call of {policy.operation!r} for {key!r} now that the store is back"
    _report(policy, call, "completed_late", msg, logging.WARNING)
    local.finish(store, call.key, flight, waiting.data)
    return _replay(policy, call, waiting.data, None)


def first_run(policy: core.Policy, call: core.Call) -> None:
    """Report that this caller claimed the key and runs the function (the driver then holds the claim)."""
    message = lambda: f"running {policy.operation!r} for {core.shown(policy, call)!r}"  # noqa: E731
    _report(policy, call, "first_run", message, logging.DEBUG)


def _lead(policy: core.Policy, store: object, call: core.Call, flight: local.Flight) -> Flow:
    waiting = local.pending(store, call.key)
    if waiting is not None:
        flushed = yield from _flush(policy, store, call, flight, waiting)
        if flushed is not None:
            return flushed
    claim = core.claim(policy, call)
    record, created = yield (PUT, call.key, claim, policy.lease)
    outcome = settle(policy, store, call, flight, record, created)
    if isinstance(outcome, Claimed):
        return outcome
    return (yield from rest(policy, store, call, flight, claim, record, outcome))


def rest(
    policy: core.Policy,
    store: object,
    call: core.Call,
    flight: local.Flight,
    claim: bytes,
    record: Any,
    step: core.Step,
) -> Flow:
    """The leader's flow after `settle`: run (hold the claim), or wait for the holder in another process."""
    try:
        attempt = 0
        holder: Any = None
        while True:
            if step.action == core.RUN:
                if holder is None:
                    first_run(policy, call)
                else:
                    msg = f"took over {core.shown(policy, call)!r} from {holder!r}, whose claim expired"
                    _report(policy, call, "takeover", msg, logging.WARNING, previous_owner=str(holder))
                lease = yield (HOLD, call.key, claim, record.version, policy.lease, policy.operation)
                return Claimed(call, flight, lease, False, None)
            assert step.data is not None
            if step.action == core.REPLAY:
                local.finish(store, call.key, flight, step.data)
                return _replay(policy, call, step.data, None)
            if holder is None:
                holder = step.data.get("owner")
                msg = f"waiting for {core.shown(policy, call)!r}, held by {holder!r}"
                _report(policy, call, "wait", msg, logging.INFO, where="store", owner=str(holder))
            yield (SLEEP, core.poll_delay(attempt, policy.lease))
            attempt += 1
            record = yield (GET, call.key)
            created = False
            if record is None:
                record, created = yield (PUT, call.key, claim, policy.lease)
            step = _decide(policy, call, record, created)
    except BaseException:
        local.finish(store, call.key, flight)
        raise


def _decide_data(policy: core.Policy, call: core.Call, data: dict[str, Any]) -> core.Step:
    """`core.judge` for a parsed record, reporting a conflict before it propagates."""
    try:
        return core.judge(policy, call, data, None)
    except IdempotencyConflictError as exc:
        _report(policy, call, "conflict", exc.message, logging.INFO)
        raise


def _decide(policy: core.Policy, call: core.Call, record: Any, created: bool) -> core.Step:
    """`core.decide`, reporting a conflict before it propagates."""
    try:
        return core.decide(policy, call, record, created)
    except IdempotencyConflictError as exc:
        _report(policy, call, "conflict", exc.message, logging.INFO)
        raise


def _replay(policy: core.Policy, call: core.Call, data: dict[str, Any], flight: local.Flight | None) -> Claimed:
    kind = "error" if "error" in data else "result"
    if enabled("idempotent", logging.INFO):  # `_report`, inlined: every replay reports
        message = lambda: f"replaying the stored {kind} for {core.shown(policy, call)!r}"  # noqa: E731
        _report(policy, call, "replay", message, logging.INFO, replayed=kind)
    else:
        count("idempotent", "replay", policy.operation)
    value, unstored = core.replay(policy, call, data)
    if unstored is not None:
        if flight is not None and flight.has_live:
            value = flight.live
        else:
            key = core.shown(policy, call)
            msg = f"{policy.operation!r} already ran for {key!r}; its result was not stored ({unstored}): None"
            _report(policy, call, "result_not_stored", msg, logging.WARNING)
    return Claimed(call, None, None, True, value)
