"""The pure decisions of `reliable.single_instance`: settings, holders, keys, timings and messages.

Nothing here does I/O or reads a clock; the file backend (`._file_lock`), the store
backend (`._store_lease`) and the sync and async drivers (`._single_instance`) pass
in what they observed and act on what these functions decide.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from ._config import check_store_option
from ._errors import ConfigError
from ._internal._durations import Duration, optional_seconds, seconds

__all__ = [
    "DEFAULT_TTL",
    "MAX_NAME_LENGTH",
    "Conflict",
    "Holder",
    "OnConflict",
    "Settings",
    "conflict_message",
    "holder_from_record",
    "holder_from_value",
    "next_poll",
    "renew_after",
    "retry_renew_after",
    "slot_key",
    "store_value",
    "validate",
]

OnConflict = Literal["skip", "wait", "raise"]
_ON_CONFLICT = ("skip", "wait", "raise")
DEFAULT_TTL = 60.0
"""Seconds a store lease lives without renewal; a killed holder's lease frees after at most this long."""
MIN_TTL = 0.05
MAX_NAME_LENGTH = 200
MAX_LIMIT = 1000
KEY_PREFIX = "lock:"
"""Store keys of lease slots start with this, so ``store.scan(KEY_PREFIX)`` lists every holder."""


@dataclass(frozen=True)
class Settings:
    """The validated arguments of one `single_instance` call."""

    __slots__ = ("limit", "lock_dir", "name", "on_conflict", "store", "timeout", "ttl")

    name: str
    on_conflict: OnConflict
    timeout: float | None
    ttl: float
    limit: int
    store: Any
    lock_dir: str | None


def validate(
    name: object,
    *,
    on_conflict: object,
    timeout: Duration | None,
    ttl: Duration,
    limit: object,
    store: object,
    lock_dir: object,
) -> Settings:
    """Check every argument of `single_instance` and return them normalized; raise `ConfigError` naming the bad one."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH or "\x00" in name:
        msg = (
            f"name={name!r} is not a usable lock name; pass a non-empty str of at most "
            f"{MAX_NAME_LENGTH} characters, such as 'nightly-report'"
        )
        raise ConfigError(msg, parameter="name", value=name)
    if on_conflict not in _ON_CONFLICT:
        msg = f"on_conflict={on_conflict!r} is not one of 'skip', 'wait', 'raise'; pass one of them (default 'skip')"
        raise ConfigError(msg, parameter="on_conflict", value=on_conflict)
    wait_for = optional_seconds(timeout, "timeout")
    if wait_for is not None and on_conflict != "wait":
        msg = (
            f"timeout={timeout!r} only applies to on_conflict='wait', not {on_conflict!r}; "
            "pass on_conflict='wait' or drop timeout"
        )
        raise ConfigError(msg, parameter="timeout", value=timeout)
    lease_for = seconds(ttl, "ttl", allow_zero=False)
    if lease_for < MIN_TTL:
        msg = f"ttl={ttl!r} is shorter than {MIN_TTL}s, too short to renew in time; pass a longer ttl such as '30s'"
        raise ConfigError(msg, parameter="ttl", value=ttl)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        msg = f"limit={limit!r} is not a number of concurrent holders; pass an int from 1 to {MAX_LIMIT}"
        raise ConfigError(msg, parameter="limit", value=limit)
    check_store_option(store, _looks_like_store)
    directory: str | None = None
    if lock_dir is not None:
        if not isinstance(lock_dir, (str, os.PathLike)) or not os.fspath(lock_dir):
            msg = f"lock_dir={lock_dir!r} is not a directory path; pass a str or pathlib.Path, or None for the default"
            raise ConfigError(msg, parameter="lock_dir", value=lock_dir)
        directory = os.fspath(lock_dir)
        if not isinstance(directory, str):
            directory = os.fsdecode(directory)
    return Settings(name, on_conflict, wait_for, lease_for, limit, store, directory)  # type: ignore[arg-type]  # on_conflict checked above


def _looks_like_store(obj: object) -> bool:
    return all(callable(getattr(obj, m, None)) for m in ("get", "put_if_absent", "compare_and_set", "delete", "incr"))


# -- holders -----------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a lock slot, as far as its metadata says."""

    __slots__ = ("expires_at", "host", "name", "pid", "since", "slot", "token")

    name: str
    pid: int | None
    host: str | None
    since: float | None
    """Wall-clock (or store) time the holder acquired, seconds since the epoch."""
    token: int | None
    slot: int | None
    expires_at: float | None
    """Store time its lease ends unless renewed (store backend), else None."""

    def describe(self) -> str:
        """``pid 4242 on web1 since 2026-11-29 17:10:32Z`` (parts that are unknown are left out)."""
        parts = [f"pid {self.pid}" if self.pid is not None else "an unknown process"]
        if self.host:
            parts.append(f"on {self.host}")
        if self.since is not None:
            parts.append(f"since {format_time(self.since)}")
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "host": self.host,
            "since": self.since,
            "token": self.token,
            "slot": self.slot,
            "expires_at": self.expires_at,
        }


def format_time(epoch: float) -> str:
    """UTC time to the second, ISO-like, for messages."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))
    except (OverflowError, OSError, ValueError):
        return repr(epoch)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def holder_from_value(name: str, value: object, *, expires_at: float | None = None) -> Holder:
    """Read holder metadata from a lock file's or a lease record's decoded value; unknown fields become None."""
    data = value if isinstance(value, dict) else {}
    host = data.get("host")
    stored_name = data.get("name")
    return Holder(
        name=stored_name if isinstance(stored_name, str) else name,
        pid=_int(data.get("pid")),
        host=host if isinstance(host, str) else None,
        since=_float(data.get("since")),
        token=_int(data.get("token")),
        slot=_int(data.get("slot")),
        expires_at=expires_at,
    )


def holder_from_record(name: str, record: Any) -> Holder:
    """Read holder metadata from a store lease record: its value, and the record's version as the token.

    A lease's token is the version of the record that claimed the slot. The claim cannot
    write its own version into its value, so until the first renewal (which writes it)
    the record's version is the token; after that the value's ``token`` is.
    """
    holder = holder_from_value(name, record.value, expires_at=record.expires_at)
    if holder.token is None and isinstance(record.version, int):
        return replace(holder, token=record.version)
    return holder


@dataclass(frozen=True)
class Conflict:
    """One failed try at a lock: who holds the slots, and whether a holder is in this very process."""

    __slots__ = ("expires_in", "holders", "in_process")

    holders: list[Holder]
    in_process: bool
    """A slot is held by another thread or task of this process: wait on the in-process signal."""
    expires_in: float | None
    """Seconds until the earliest store lease among the holders ends unless renewed (store backend)."""


# -- store keys and values -----------------------------------------------------------


def slot_key(name: str, slot: int) -> str:
    """The store key of lease slot *slot* of lock *name*."""
    return f"{KEY_PREFIX}{name}:{slot}"


def store_value(*, name: str, owner: str, pid: int, host: str, since: float, slot: int) -> dict[str, Any]:
    """The JSON value of a store lease claim: the holder metadata plus the owner id that proves it is ours.

    Renewals write it again with ``"token"`` added (see `holder_from_record`).
    """
    return {"name": name, "owner": owner, "pid": pid, "host": host, "since": since, "slot": slot}


# -- timings ---------------------------------------------------------------------------


def renew_after(ttl: float) -> float:
    """Seconds between renewals: a third of the TTL, so two renewals can fail before the lease ends."""
    return ttl / 3.0


def retry_renew_after(ttl: float, remaining: float) -> float:
    """Seconds before retrying a failed renewal (store unreachable) with *remaining* seconds of lease left."""
    return max(min(ttl / 10.0, remaining / 2.0), 0.0)


POLL_FIRST = 0.05
POLL_MAX = 1.0


def next_poll(attempt: int, *, remaining: float | None, expires_in: float | None = None) -> float | None:
    """How long to sleep before the next try at a lock held in another process, or None to give up.

    Polls start at 50 ms and double up to 1 s; a store lease that ends sooner is retried
    as it ends; the wait never outlasts *remaining* (None: wait for ever).
    """
    if remaining is not None and remaining <= 0:
        return None
    delay = min(POLL_FIRST * (2.0 ** min(attempt, 16)), POLL_MAX)
    if expires_in is not None:
        delay = min(delay, max(expires_in, 0.001))
    if remaining is not None:
        delay = min(delay, remaining)
    return delay


# -- messages -------------------------------------------------------------------------


def holders_text(holders: list[Holder], limit: int) -> str:
    if not holders:
        return "held by another process whose details are not written yet"
    described = "; ".join(h.describe() for h in holders)
    if limit > 1:
        return f"all {limit} slots held: {described}"
    return f"held by {described}"


def conflict_message(name: str, holders: list[Holder], *, limit: int, waited: float | None) -> str:
    """The message of `AlreadyRunningError`: what is held, by whom, and what to do next."""
    what = holders_text(holders, limit)
    if waited is None:
        return (
            f"{name!r} is already running ({what}); pass on_conflict='wait' to wait for it, "
            f"or on_conflict='skip' to skip this run"
        )
    return (
        f"{name!r} is still running after waiting {waited:.1f}s ({what}); "
        "pass a longer timeout, or on_conflict='skip' to skip this run"
    )


def skip_message(name: str, holders: list[Holder], *, limit: int) -> str:
    """The INFO log line of a skipped run."""
    return f"skipped: already running ({holders_text(holders, limit)}); lock {name!r}"
