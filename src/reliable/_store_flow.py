"""The store lease protocol, written once as generators of store operations, with a sync and an async runner.

Each flow yields ``(method, args, kwargs)`` for a `reliable.stores.Store` method and
receives its result (or has its exception thrown in), as httpx's ``auth_flow`` does:
`run` calls ``store.method``, `arun` awaits ``store.amethod``. The flows are the only
place that knows how a lease is kept in a store:

- acquire: one ``put_if_absent`` of a slot key with the TTL. The version of the record
  it creates is the fencing token: a store hands out versions from one store-wide
  counter that only grows (the `reliable.stores.Record` contract, checked by
  ``check_store``), and a later holder can only create its record after this one is
  gone, so its token is larger. A claim whose reply comes back after its TTL is given
  up (the lease may be someone else's by then), so no holder ever holds with a token
  smaller than an earlier one's, even on a store whose counter is taken before the row
  lock (a PostgreSQL sequence).
- renew: ``compare_and_set`` on the version we last wrote, extending the TTL; the value
  it writes carries the token, which the version no longer is (`holder_from_record`
  reads either);
- release: ``delete`` only with that version, so a lease that now belongs to someone
  else is never deleted;
- whenever a version does not match, ``get`` tells whether the record is still ours
  (our random owner id) before deciding it is lost: another renewal of ours may have
  moved the version on.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Generator, Hashable
from typing import Any, TypeVar

from . import _lock_registry
from ._internal import _clock
from ._lease_core import Conflict, Holder, holder_from_record, slot_key, store_value

__all__ = ["Flow", "Op", "acquire_flow", "arun", "is_ours", "release_flow", "run"]

T = TypeVar("T")
Op = tuple[str, tuple[Any, ...], dict[str, Any]]
Flow = Generator[Op, Any, T]


def run(flow: Flow[T], store: Any) -> T:
    """Drive *flow* with the blocking methods of *store*."""
    try:
        method, args, kwargs = next(flow)
        while True:
            try:
                result = getattr(store, method)(*args, **kwargs)
            except Exception as exc:
                method, args, kwargs = flow.throw(exc)
            else:
                method, args, kwargs = flow.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value


async def arun(flow: Flow[T], store: Any) -> T:
    """Drive *flow* with the ``a``-prefixed methods of *store* (its blocking ones if it has no async twin)."""
    try:
        method, args, kwargs = next(flow)
        while True:
            try:
                call = getattr(store, "a" + method, None)
                if call is None:
                    result = getattr(store, method)(*args, **kwargs)
                else:
                    result = call(*args, **kwargs)
                    if inspect.isawaitable(result):
                        result = await result
            except Exception as exc:
                method, args, kwargs = flow.throw(exc)
            else:
                method, args, kwargs = flow.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value


def is_ours(record: Any, owner_id: str) -> bool:
    """Whether a lease record carries our owner id."""
    value = getattr(record, "value", None)
    return isinstance(value, dict) and value.get("owner") == owner_id


def acquire_flow(
    *,
    name: str,
    limit: int,
    ttl: float,
    owner: _lock_registry.Owner,
    owner_id: str,
    host: str,
    since: float,
    registry_key: Hashable,
    want_expiry: bool,
) -> Flow[tuple[int, int, dict[str, Any], int] | Conflict | None]:
    """One try at every slot: ``(slot, version, value, token)`` of the lease won, the `Conflict`, or None (re-entry).

    A free slot costs one ``put_if_absent``; the token is the version of the record it creates.
    """
    in_process = False
    holders: list[Holder] = []
    clock = _clock.current()
    valid_until = clock.monotonic() + ttl
    for slot in range(limit):
        key = slot_key(name, slot)
        taken = _lock_registry.take(registry_key, slot, owner)
        if taken == _lock_registry.MINE:
            return None
        if taken == _lock_registry.BUSY:
            in_process = True
            record = yield ("get", (key,), {})
            if record is not None:
                holders.append(holder_from_record(name, record))
            continue
        value = store_value(name=name, owner=owner_id, pid=_lock_registry.pid, host=host, since=since, slot=slot)
        try:
            record, created = yield ("put_if_absent", (key, value), {"ttl": ttl})
            if created and clock.monotonic() >= valid_until:  # the reply came after the TTL: not ours to trust
                with contextlib.suppress(Exception):
                    yield ("delete", (key,), {"version": record.version})
                record, created = (yield ("get", (key,), {})), False
        except BaseException:
            _lock_registry.give_back(registry_key, slot)
            raise
        if not created:
            if record is not None:
                holders.append(holder_from_record(name, record))
            _lock_registry.give_back(registry_key, slot)
            continue
        token = int(record.version)
        return (slot, token, {**value, "token": token}, token)
    expires_in: float | None = None
    ends = [h.expires_at for h in holders if h.expires_at is not None]
    if want_expiry and ends:
        now = yield ("now", (), {})
        expires_in = min(ends) - now
    return Conflict(holders, in_process, expires_in)


def renew_flow(*, key: str, value: dict[str, Any], version: int, ttl: float, owner_id: str) -> Flow[int | None]:
    """Extend the lease: its new version, or None if it is no longer ours."""
    record = yield ("compare_and_set", (key, value), {"version": version, "ttl": ttl})
    if record is None:
        current = yield ("get", (key,), {})
        if current is None or not is_ours(current, owner_id):
            return None
        record = yield ("compare_and_set", (key, value), {"version": current.version, "ttl": ttl})
    return None if record is None else int(record.version)


def check_flow(*, key: str, owner_id: str) -> Flow[bool]:
    """Whether the store still holds our lease."""
    current = yield ("get", (key,), {})
    return current is not None and is_ours(current, owner_id)


def release_flow(*, key: str, version: int, owner_id: str) -> Flow[bool]:
    """Delete the lease if it is still ours: True if deleted, False if it belonged to no one or someone else."""
    for _ in range(3):
        if (yield ("delete", (key,), {"version": version})):
            return True
        current = yield ("get", (key,), {})
        if current is None or not is_ours(current, owner_id):
            return False
        version = current.version
    return False
