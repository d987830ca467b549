"""The store backend of `single_instance`: a lease with a TTL, renewed in the background, with a fencing token.

Renewal, and why it is built this way
--------------------------------------
`StoreLease.renew` (and `StoreLease.arenew`) extend the lease once, now; the background
renewer calls it every third of the TTL (so two renewals can fail before the lease ends),
and tests or callers with their own loop can call it too.

Leases taken with ``with`` / a sync function are renewed by their store's shared renewer
thread (`._lease_renewer`: one daemon thread per store, not one per lease, so a lease
costs no thread start and join); leases taken with ``async with`` / a coroutine function
by a timer of the running loop, which starts a task only when a renewal is due. Both
renew inside a copy of the acquiring context (`contextvars.copy_context`), so the
telemetry listeners of an enclosing ``observed`` see each ``renewed`` event as progress.

Renewal times come from the library clock, but renewers wait for them in real time on a
signal, never by sleeping on the clock: a renewer asleep on a fake clock with
``auto_advance`` would jump time forward for the whole test, and one asleep on the real
clock could not be stopped at release. With the real clock the wait lasts until the next
renewal is due (or the lease is released); with any other clock the renewer looks at the
clock every 5 ms, so a test moves time with ``clock.advance(...)`` and the renewal happens
then, exactly once per renewal period passed, with no real waiting for the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from typing import Any

from . import _lease_renewer, _lock_registry
from ._internal import _clock, _telemetry
from ._lease import Lease
from ._lease_core import renew_after, retry_renew_after, slot_key
from ._lease_renewer import FAKE_CLOCK_POLL
from ._store_flow import arun, check_flow, release_flow, renew_flow, run

__all__ = ["FAKE_CLOCK_POLL", "StoreLease"]


class StoreLease(Lease):
    """A `Lease` kept in a store, with a TTL the holder renews in the background."""

    __slots__ = (
        "_arenewal",
        "_context",
        "_entry",
        "_loop",
        "_next_renew",
        "_owner_id",
        "_renewer",
        "_stopped",
        "_store",
        "_timer",
        "_ttl",
        "_valid_until",
        "_value",
        "_version",
    )
    backend = "store"

    def __init__(
        self,
        store: Any,
        owner_id: str,
        value: dict[str, Any],
        version: int,
        ttl: float,
        started: float,
        *lease: Any,
    ) -> None:
        super().__init__(*lease)
        self._store = store
        self._owner_id = owner_id
        self._value = value
        self._version = version
        self._ttl = ttl
        self._valid_until = started + ttl
        self._next_renew = started + renew_after(ttl)
        self._stopped = False
        self._context: contextvars.Context | None = None
        self._renewer: Any = None
        self._entry: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._arenewal: asyncio.Task[None] | None = None

    @property
    def ttl(self) -> float:
        """Seconds the lease lasts without renewal."""
        return self._ttl

    @property
    def lost(self) -> bool:
        self._expire_if_due()
        return super().lost

    # -- renewal -------------------------------------------------------------------------

    def _expire_if_due(self) -> None:
        if self._lost is None and not self._released and _clock.current().monotonic() >= self._valid_until:
            self._mark_lost(f"it was not renewed within its ttl of {self._ttl:g}s, so another holder may have it")

    def _renewed(self, version: int | None, started: float) -> None:
        if version is None:
            self._mark_lost("its lease expired or another holder took it over before it was renewed")
            self._raise_if_lost()
            return
        self._version = version
        self._valid_until = started + self._ttl
        self._next_renew = started + renew_after(self._ttl)
        _telemetry.emit(
            "single_instance",
            "renewed",
            f"renewed lock {self.name!r} for {self._ttl:g}s",
            level=logging.DEBUG,
            attributes=self._attributes(**{"reliable.lock.held_s": self.held_s, "reliable.lock.ttl_s": self._ttl}),
        )

    def _renew_args(self) -> dict[str, Any]:
        return {
            "key": slot_key(self.name, self.slot),
            "value": self._value,
            "version": self._version,
            "ttl": self._ttl,
            "owner_id": self._owner_id,
        }

    def renew(self) -> None:
        """Extend the lease by its TTL now (the background renewer does this for you).

        Raises:
            LeaseLostError: the lease expired or belongs to another holder now.
            StoreError: the store failed; the lease stays valid until its TTL runs out.
        """
        self._raise_if_lost()
        self._expire_if_due()
        self._raise_if_lost()
        started = _clock.current().monotonic()
        self._renewed(run(renew_flow(**self._renew_args()), self._store), started)

    async def arenew(self) -> None:
        """The async twin of `renew`."""
        self._raise_if_lost()
        self._expire_if_due()
        self._raise_if_lost()
        started = _clock.current().monotonic()
        self._renewed(await arun(renew_flow(**self._renew_args()), self._store), started)

    def _failed(self, exc: Exception) -> bool:
        """A renewal failed for a reason other than losing the lease: retry soon, or give up at the TTL."""
        now = _clock.current().monotonic()
        remaining = self._valid_until - now
        if remaining <= 0:
            self._mark_lost(f"it could not be renewed within its ttl of {self._ttl:g}s ({exc})")
            return False
        self._next_renew = now + retry_renew_after(self._ttl, remaining)
        _telemetry.emit(
            "single_instance",
            "renew_failed",
            f"could not renew lock {self.name!r} ({exc}); retrying, {remaining:.1f}s of lease left",
            level=logging.WARNING,
            attributes=self._attributes(**{"reliable.lock.remaining_s": remaining}),
            exception=exc,
        )
        return True

    def _due_in(self) -> tuple[float, float]:
        """(library-clock seconds until the next renewal, real seconds to wait before looking again)."""
        clock = _clock.current()
        due = self._next_renew - clock.monotonic()
        return due, (due if isinstance(clock, _clock.SystemClock) else min(due, FAKE_CLOCK_POLL))

    def _renew_due(self) -> bool:
        """One background renewal: whether to keep renewing (a failure short of losing the lease retries soon)."""
        try:
            self.renew()
        except Exception as exc:
            if self.lost or not self._failed(exc):
                return False
        return True

    def _renew_in_background(self) -> bool:
        """`_renew_due` in the acquiring context, for the shared renewer thread; never raises."""
        try:
            return bool(self._context.run(self._renew_due)) if self._context is not None else False
        except BaseException:  # a renewer thread must outlive any one lease
            return False

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Look again when the next renewal is due (or in `FAKE_CLOCK_POLL` real seconds, on a fake clock)."""
        self._timer = loop.call_later(max(self._due_in()[1], 0.0), self._awake, loop, context=self._context)

    def _awake(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._stopped:
            if self._due_in()[0] > 0:
                self._arm(loop)
            else:
                self._arenewal = loop.create_task(self._arenew_once(loop), name=f"reliable-lease:{self.name}")

    async def _arenew_once(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            await self.arenew()
        except Exception as exc:
            if self.lost or not self._failed(exc):
                return
        if not self._stopped:
            self._arm(loop)

    def start_renewer(self) -> None:
        """Renew through the store's shared renewer thread, in a copy of the caller's context."""
        self._context = contextvars.copy_context()
        _lease_renewer.schedule(self, self._store)

    def start_arenewer(self) -> None:
        """Renew from timers of the running loop, in a copy of the caller's context."""
        self._context = contextvars.copy_context()
        self._loop = asyncio.get_running_loop()
        self._arm(self._loop)

    # -- check and release -------------------------------------------------------------

    def check(self) -> None:
        """Raise `LeaseLostError` unless the store still holds this lease (one read from the store)."""
        self._raise_if_lost()
        self._expire_if_due()
        self._raise_if_lost()
        if not run(check_flow(key=self.where, owner_id=self._owner_id), self._store):
            self._mark_lost("the store holds another holder's lease now (or none)")
            self._raise_if_lost()

    async def acheck(self) -> None:
        """The async twin of `check`."""
        self._raise_if_lost()
        self._expire_if_due()
        self._raise_if_lost()
        if not await arun(check_flow(key=self.where, owner_id=self._owner_id), self._store):
            self._mark_lost("the store holds another holder's lease now (or none)")
            self._raise_if_lost()

    def _stop_renewing(self) -> None:
        self._stopped = True
        _lease_renewer.cancel(self, self._ttl)
        timer, self._timer = self._timer, None
        if timer is not None and self._loop is not None:  # the timer's loop may run in another thread
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(timer.cancel)

    def release(self) -> None:
        """Stop renewing and delete the lease, only if it is still ours."""
        if self._released:
            return
        self._stop_renewing()
        if self.pid != _lock_registry.pid:  # a forked child must never delete its parent's lease
            self._released = True
            return
        try:
            deleted: bool | Exception = run(self._release_flow(), self._store)
        except Exception as exc:
            deleted = exc
        self._after_release(deleted)

    async def arelease(self) -> None:
        """The async twin of `release`."""
        if self._released:
            return
        loop, timer = asyncio.get_running_loop(), self._timer
        if timer is not None and self._loop is loop:
            self._timer = None
            timer.cancel()
        self._stop_renewing()
        renewal, self._arenewal = self._arenewal, None
        if renewal is not None and self._loop is loop and not renewal.done() and renewal is not asyncio.current_task():
            await asyncio.gather(renewal, return_exceptions=True)
        if self.pid != _lock_registry.pid:
            self._released = True
            return
        try:
            deleted: bool | Exception = await arun(self._release_flow(), self._store)
        except Exception as exc:
            deleted = exc
        self._after_release(deleted)

    def _release_flow(self) -> Any:
        return release_flow(key=self.where, version=self._version, owner_id=self._owner_id)

    def _after_release(self, deleted: bool | Exception) -> None:
        if isinstance(deleted, Exception):
            _telemetry.emit(
                "single_instance",
                "release_failed",
                f"could not release lock {self.name!r} ({deleted}); it ends by itself within {self._ttl:g}s",
                level=logging.WARNING,
                attributes=self._attributes(),
                exception=deleted,
            )
        elif not deleted:
            self._mark_lost("at release, the store held another holder's lease (or none)")
        self._finish_release()
