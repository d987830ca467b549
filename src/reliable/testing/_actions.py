"""What a fault does to one call: the `Action`, the record of it, the simulated crash, and the two drivers.

A fault point decides an `Action` for each call (pure, in ``_faults``); `run` and `arun`
carry it out around the real call: wait on the library clock, then call through,
raise, return a canned value, or call through and then crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .._errors import ConfigError
from .._internal import _clock

__all__ = ["Action", "InjectedFault", "Return", "SimulatedCrash", "arun", "run"]

T = TypeVar("T")
Outcome = Literal["call", "raise", "return", "call_then_raise"]


class SimulatedCrash(BaseException):
    """The process "died" here: raised by `Faults.crash` at a chosen call.

    A `BaseException`, like `KeyboardInterrupt`, so code that catches `Exception` to
    clean up does not catch it, as it could not run after a real crash. While it
    propagates, every store wrapped by the `Faults` refuses to work (with
    `StoreUnavailableError`), so no ``finally`` block or ``__exit__`` can release a claim
    or lease the dead process held, while the primitive's in-process bookkeeping (which
    the crash would have wiped) still unwinds; once the test has caught it, the stores
    work again, as for a process started afresh. Recover after the ``except`` block (as
    ``pytest.raises`` does), not inside it.

    Attributes:
        point: The fault point, e.g. ``"myjob.orders:write"`` or ``"store.compare_and_set"``.
        call: The 1-based call at that point that crashed.
        landed: Whether the call's effect happened before the crash (``lands=True``).

    .. versionadded:: 0.1.0
    """

    def __init__(self, point: str, call: int, *, landed: bool = False) -> None:
        when = "after its effect landed" if landed else "before it ran"
        super().__init__(f"simulated crash at {point!r} (call {call}, {when}); injected by reliable.testing.Faults")
        self.point = point
        self.call = call
        self.landed = landed


@dataclass(frozen=True)
class Return:
    """A scripted outcome that returns *value* as it is, for values a script would otherwise read as a fault.

    ``faults.script(target, [Return(0)])`` returns 0 (a bare ``0`` would be an HTTP status);
    ``Return("ok")`` returns the string ``"ok"``; ``Return(TimeoutError())`` returns an exception.

    .. versionadded:: 0.1.0
    """

    value: Any


@dataclass(frozen=True)
class InjectedFault:
    """One fault a `Faults` injected, as recorded in `Faults.log`.

    Attributes:
        point: Where: ``"module:attribute"``, ``"store.<operation>"`` or an object's ``"Type.method"``.
        kind: ``"raise"``, ``"return"``, ``"latency"``, ``"crash"``, ``"unavailable"``, ``"flaky"`` or ``"slow"``.
        call: The 1-based call at *point* (per rule; per store operation for store modes).
        detail: The exception, value or latency, as text.
        time: The library clock's wall time when it was injected.

    .. versionadded:: 0.1.0
    """

    point: str
    kind: str
    call: int
    detail: str
    time: float


@dataclass(frozen=True)
class Action:
    """What to do with one call: wait *delay* seconds (fake clock), then *outcome*."""

    delay: float = 0.0
    outcome: Outcome = "call"
    error: BaseException | None = None
    value: Any = None


CALL = Action()


def _clock_for_latency(point: str) -> _clock.Clock:
    clock = _clock.current()
    if isinstance(clock, _clock.SystemClock):
        msg = (
            f"latency at {point!r} advances a fake clock and never sleeps for real; install one with the "
            "reliable_clock fixture or `with reliable.testing.installed(reliable.testing.FakeClock()):`"
        )
        raise ConfigError(msg, point=point)
    return clock


def run(action: Action, point: str, call: Callable[[], T]) -> T:
    """Carry out *action* around the synchronous *call*."""
    if action.delay:
        _clock_for_latency(point).sleep(action.delay)
    if action.outcome == "raise":
        assert action.error is not None
        raise action.error
    if action.outcome == "return":
        return action.value  # type: ignore[no-any-return]  # the canned value the test asked for
    result = call()
    if action.outcome == "call_then_raise":
        assert action.error is not None
        raise action.error
    return result


async def arun(action: Action, point: str, call: Callable[[], Awaitable[T]]) -> T:
    """Carry out *action* around the awaitable *call*: the async twin of `run`."""
    if action.delay:
        await _clock_for_latency(point).asleep(action.delay)
    if action.outcome == "raise":
        assert action.error is not None
        raise action.error
    if action.outcome == "return":
        return action.value  # type: ignore[no-any-return]  # the canned value the test asked for
    result = await call()
    if action.outcome == "call_then_raise":
        assert action.error is not None
        raise action.error
    return result
