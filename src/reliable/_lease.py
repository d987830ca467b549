"""`Lease`, what a held `single_instance` lock gives its holder, and `SKIPPED`, what a skipped run gets instead."""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Hashable
from typing import Any, ClassVar, Final

from . import _lock_registry
from ._errors import LeaseLostError
from ._internal import _clock, _telemetry
from ._lease_core import Holder

__all__ = ["SKIPPED", "Lease", "Skipped"]


class Skipped(enum.Enum):
    """The type of `SKIPPED`: annotate a skippable job as ``def job() -> int | reliable.Skipped``.

    .. versionadded:: 0.1.0
    """

    SKIPPED = "skipped"

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "reliable.SKIPPED"

    __str__ = __repr__


SKIPPED: Final = Skipped.SKIPPED
"""Returned instead of the result when ``on_conflict="skip"`` skipped a run (falsy; test with ``is``).

A function decorated with ``@single_instance(..., on_conflict="skip")`` returns it
when another holder had the lock, and ``with single_instance(...) as lease:`` binds
*lease* to it, so ``if lease is reliable.SKIPPED: return`` skips the block.

.. versionadded:: 0.1.0
"""


class Lease:
    """A held `reliable.single_instance` lock: who holds it, its fencing token, and whether it is still held.

    Attributes:
        name: The lock's name.
        token: The fencing token: larger for every later holder of this name. Pass it
            with writes to a system that can reject a smaller token than it has seen,
            so a holder that lost its lock without knowing cannot overwrite newer work.
        slot: Which of the ``limit`` slots this holder has (0 when ``limit=1``).
        backend: ``"file"`` (a ``flock`` on this host) or ``"store"`` (a lease in a store).
        pid: The holder's process id.
        host: The holder's host name.
        since: Wall-clock time of the acquisition, seconds since the epoch.
        where: The lock file's path, or the store key of the lease.

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "_acquired_at",
        "_lost",
        "_registry_key",
        "_released",
        "host",
        "name",
        "pid",
        "since",
        "slot",
        "token",
        "where",
    )

    backend: ClassVar[str] = ""

    def __init__(
        self, name: str, token: int, slot: int, pid: int, host: str, since: float, where: str, registry_key: Hashable
    ) -> None:
        self.name = name
        self.token = token
        self.slot = slot
        self.pid = pid
        self.host = host
        self.since = since
        self.where = where
        self._registry_key = registry_key
        self._acquired_at = _clock.current().monotonic()
        self._lost: str | None = None
        self._released = False

    def __repr__(self) -> str:
        state = "released" if self._released else ("lost" if self._lost else "held")
        return f"<Lease {self.name!r} token={self.token} slot={self.slot} {self.backend} {state}>"

    @property
    def holder(self) -> Holder:
        """The holder metadata as other processes see it."""
        return Holder(self.name, self.pid, self.host, self.since, self.token, self.slot, None)

    @property
    def held_s(self) -> float:
        """Seconds since the lock was acquired, on the library clock."""
        return _clock.current().monotonic() - self._acquired_at

    @property
    def lost(self) -> bool:
        """True once this holder knows the lock may belong to someone else (see `check`)."""
        return self._lost is not None or self.pid != _lock_registry.pid

    @property
    def released(self) -> bool:
        """True once `release` ran."""
        return self._released

    # -- overridden by the backends ------------------------------------------------------

    def check(self) -> None:
        """Raise `LeaseLostError` unless this holder still holds the lock.

        Call it right before a side effect that must not overlap another holder.
        Checking narrows the window but cannot close it (the process can pause right
        after); the fencing `token` closes it where the downstream system checks it.

        Raises:
            LeaseLostError: the lock was released, lost, or this is a forked child.
        """
        self._raise_if_lost()

    async def acheck(self) -> None:
        """The async twin of `check`."""
        self.check()

    def renew(self) -> None:
        """Extend the lease now. A file lock never expires, so this only checks it.

        Raises:
            LeaseLostError: the lock is no longer held.
        """
        self.check()

    async def arenew(self) -> None:
        """The async twin of `renew`."""
        await self.acheck()

    def release(self) -> None:
        """Give the lock back (idempotent); ``with`` blocks and decorators call this for you."""
        raise NotImplementedError

    async def arelease(self) -> None:
        """The async twin of `release`."""
        self.release()

    # -- shared helpers ----------------------------------------------------------------

    def _attributes(self, **extra: Any) -> dict[str, Any]:
        return {
            "reliable.operation": self.name,
            "reliable.lock.token": self.token,
            "reliable.lock.slot": self.slot,
            "reliable.lock.backend": self.backend,
            **extra,
        }

    def _raise_if_lost(self) -> None:
        if self._released:
            msg = f"lease {self.name!r} (token {self.token}) was released; acquire it again before using it"
            raise LeaseLostError(msg, name=self.name, token=self.token)
        if self.pid != _lock_registry.pid:
            msg = (
                f"lease {self.name!r} (token {self.token}) belongs to pid {self.pid}, not this forked "
                f"child (pid {os.getpid()}); acquire the lock in the child if it needs one"
            )
            raise LeaseLostError(msg, name=self.name, token=self.token)
        if self._lost is not None:
            msg = f"lease {self.name!r} (token {self.token}) was lost: {self._lost}; stop the work it protects"
            raise LeaseLostError(msg, name=self.name, token=self.token, reason=self._lost)

    def _mark_lost(self, reason: str) -> None:
        """Record that the lock is lost and report it once (an ERROR event that alerting picks up)."""
        if self._lost is not None or self._released:
            return
        self._lost = reason
        _telemetry.emit(
            "single_instance",
            "lost",
            f"lost lock {self.name!r} (token {self.token}): {reason}",
            level=logging.ERROR,
            attributes=self._attributes(**{"reliable.lock.held_s": self.held_s, "reliable.alert": True}),
        )
        if not _telemetry._scoped.get():  # inside `observed`, its run alerts with its own sinks
            _alert_lost(self.name, f"lost lock {self.name!r} (token {self.token}): {reason}", self.token)

    def _finish_release(self) -> None:
        """Bookkeeping after the backend let go: free the in-process slot and report the hold time."""
        self._released = True
        _lock_registry.give_back(self._registry_key, self.slot)
        self._report_released()

    def _report_released(self) -> None:
        """The ``released`` event with the hold time; only counted when nothing would see more of it."""
        if not _telemetry.enabled("single_instance", logging.DEBUG):
            _telemetry.count("single_instance", "released", self.name)
            return
        held = _clock.current().monotonic() - self._acquired_at
        _telemetry.emit(
            "single_instance",
            "released",
            f"released lock {self.name!r} after {held:.3f}s",
            level=logging.DEBUG,
            attributes={
                "reliable.operation": self.name,
                "reliable.lock.token": self.token,
                "reliable.lock.slot": self.slot,
                "reliable.lock.backend": self.backend,
                "reliable.lock.held_s": held,
            },
        )


def _alert_lost(name: str, message: str, token: int) -> None:
    """Send a ``lease_lost`` alert through the configured sinks (never raises)."""
    try:
        from ._alerting import Alert, fire

        fire(Alert.make("lease_lost", name, message, token=token), sinks=None, throttle=None, store=None)
    except Exception:  # alerting must never break the holder
        logging.getLogger("reliable.single_instance").debug("could not queue the lease_lost alert", exc_info=True)
