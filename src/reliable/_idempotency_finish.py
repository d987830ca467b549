"""The end of an idempotent call, as flows of store operations: store the result, or release the claim.

Written like the flows of ``_idempotency_flow.py`` (generators yielding the operations that
module's codes name) and driven by the same sync and async drivers in ``_idempotent.py``.
"""

from __future__ import annotations

import logging
from typing import Any

from . import _idempotency_core as core
from . import _idempotency_local as local
from ._errors import StoreUnavailableError
from ._idempotency_flow import CAS, DELETE, GET, PUT, SLEEP, STOP, Claimed, Flow, _report

__all__ = ["COMPLETE_TRIES", "fail", "succeed"]


def succeed(policy: core.Policy, store: object, claimed: Claimed, result: Any) -> Flow:
    """Store *result* as the key's outcome, if the claim is still this caller's."""
    call = claimed.call
    data: dict[str, Any] | None = None
    live: Any = local._MISSING
    try:
        version = yield (STOP, claimed.lease)
        value, completed, unstored = core.complete(policy, call, result)
        try:
            record = yield from _complete(policy, call, value, version)
        except StoreUnavailableError:
            if local.keep_pending(store, call.key, local.Pending(value, version, completed)):
                msg = (
                    f"{policy.operation!r} ran for {core.shown(policy, call)!r} but the store is unavailable: its "
                    f"result is kept in this process and stored by the next call with this key"
                )
                _report(policy, call, "completion_pending", msg, logging.ERROR)
            raise
        if record is None:
            record, created = yield (PUT, call.key, value, policy.ttl)
            if not created:
                error = core.lease_lost(policy, call, result)
                _report(policy, call, "lease_lost", error.message, logging.ERROR)
                raise error
            msg = (
                f"the claim on {core.shown(policy, call)!r} had expired, but nobody took it over: the result is stored"
            )
            _report(policy, call, "completed_late", msg, logging.WARNING)
        data = completed
        if unstored is not None:
            live = result
            key = core.shown(policy, call)
            msg = f"{policy.operation!r} ran for {key!r} and is marked done; its result was not stored: {unstored}"
            _report(policy, call, "result_not_stored", msg, logging.WARNING)
    finally:
        if claimed.flight is not None:
            local.finish(store, call.key, claimed.flight, data, live)
    return result


COMPLETE_TRIES = 5
"""Writes of a completed record tried before the store's error reaches the caller (waits 0.05 s, doubling)."""


def _complete(policy: core.Policy, call: core.Call, value: Any, version: int) -> Flow:
    """Compare-and-set the completed record on the claim's *version*, riding out a short store outage.

    The function has already run: if this write is given up, the claim stays in progress and a
    later call runs the function again once its lease ends. So an unavailable store is tried
    again a few times on the library clock. A write whose reply was lost may have been applied,
    so after a failure the record is read back first: if it already holds this completion,
    that is the answer.
    """
    pause = 0.05
    ambiguous = False
    for attempt in range(COMPLETE_TRIES):
        try:
            if ambiguous:
                current = yield (GET, call.key)
                if current is not None and current.value == value:
                    return current
            return (yield (CAS, call.key, value, version, policy.ttl))
        except StoreUnavailableError:
            if attempt == COMPLETE_TRIES - 1:
                raise
            ambiguous = True
            yield (SLEEP, pause)
            pause *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def fail(policy: core.Policy, store: object, claimed: Claimed, exc: BaseException) -> Flow:
    """Release the claim after *exc* so a later call can run, or record *exc* if it is in ``cache_errors``."""
    call = claimed.call
    data: dict[str, Any] | None = None
    try:
        version = yield (STOP, claimed.lease)
        if isinstance(exc, Exception) and isinstance(exc, policy.cache_errors):
            value, completed = core.complete_error(policy, call, exc)
            record = yield (CAS, call.key, value, version, policy.ttl)
            if record is None:
                record, created = yield (PUT, call.key, value, policy.ttl)
                if not created:
                    msg = f"claim on {core.shown(policy, call)!r} was taken over; {type(exc).__name__} was not recorded"
                    _report(policy, call, "lease_lost", msg, logging.ERROR)
                    return
            data = completed
            msg = f"recorded {type(exc).__name__} for {core.shown(policy, call)!r}; it is re-raised on replay"
            _report(policy, call, "error_cached", msg, logging.INFO)
            return
        if (yield (DELETE, call.key, version)):
            msg = f"released {core.shown(policy, call)!r} after {type(exc).__name__}; a later call runs again"
            _report(policy, call, "released", msg, logging.INFO, error=type(exc).__name__)
        else:
            msg = f"claim on {core.shown(policy, call)!r} was lost before {type(exc).__name__} released it"
            _report(policy, call, "lease_lost", msg, logging.WARNING)
    except Exception as store_exc:
        key = core.shown(policy, call)
        msg = f"could not release {key!r} after {type(exc).__name__} ({store_exc!r}); it frees when the lease ends"
        _report(policy, call, "release_failed", msg, logging.WARNING)
    finally:
        if claimed.flight is not None:
            local.finish(store, call.key, claimed.flight, data)
