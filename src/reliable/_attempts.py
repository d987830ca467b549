"""`reliable.attempts`: the block form of `reliable.retry`, for code that is not a function.

::

    for attempt in reliable.attempts(deadline="30s"):
        with attempt:
            response = client.get(url)
            response.raise_for_status()

It runs on tenacity's engine (`tenacity.Retrying` / `tenacity.AsyncRetrying`, whose
``iter()`` turns each outcome into ``DoAttempt`` / ``DoSleep``), with reliable's
pieces plugged into tenacity's hooks: ``retry`` classifies the failure and asks the
pure core (`_backoff.decide`) what follows, ``wait`` returns that wait (after the
retry budget agreed), ``stop`` gives up when the core said so or on the deadline of
*our* clock (tenacity's own ``stop_after_delay`` reads `time.monotonic`, which a fake
clock cannot move), and ``sleep`` is the library clock's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from types import TracebackType

import tenacity

from ._backoff import Decision, Jitter
from ._budget import RetryBudget
from ._classify import transient
from ._internal import _clock
from ._internal._clock import Clock
from ._internal._durations import Duration
from ._retry_options import On, Options, make_options
from ._retry_run import Run

__all__ = ["Attempt", "Attempts", "attempts"]


class Attempt:
    """One attempt of a `reliable.attempts` loop; run the attempt's code inside ``with attempt:``.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_manager", "number")

    def __init__(self, manager: tenacity.AttemptManager, number: int) -> None:
        self._manager = manager
        self.number = number
        """The number of this attempt, from 1."""

    def __repr__(self) -> str:
        return f"<Attempt number={self.number}>"

    def __enter__(self) -> Attempt:
        self._manager.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return self._manager.__exit__(exc_type, exc, tb)


class _Hooks:
    """reliable's decisions in tenacity's hook slots, for one loop."""

    __slots__ = ("decision", "exc", "run")

    def __init__(self, run: Run) -> None:
        self.run = run
        self.exc: BaseException | None = None
        self.decision: Decision | None = None

    def retry(self, state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        self.run.attempt = state.attempt_number
        if exc is None:
            if state.attempt_number > 1:
                self.run.succeeded()
            return False
        if not isinstance(exc, Exception):
            return False  # KeyboardInterrupt, cancellation: tenacity re-raises it untouched
        self.exc = exc
        self.decision = self.run.assess(exc)
        return True

    def _decision(self) -> Decision:
        assert self.decision is not None
        return self.decision

    def wait(self, state: tenacity.RetryCallState) -> float:
        decision = self._decision()
        budget = self.run.options.budget
        if decision.wait is not None and budget is not None and not budget.try_acquire():
            self.decision = decision = self.run.budget_denied()
        return decision.wait or 0.0

    async def await_wait(self, state: tenacity.RetryCallState) -> float:
        decision = self._decision()
        budget = self.run.options.budget
        if decision.wait is not None and budget is not None and not await budget.atry_acquire():
            self.decision = decision = self.run.budget_denied()
        return decision.wait or 0.0

    def stop(self, state: tenacity.RetryCallState) -> bool:
        decision = self._decision()
        if decision.wait is None:
            self.run.give_up(self.exc, decision)
            return True
        return False

    def before_sleep(self, state: tenacity.RetryCallState) -> None:
        wait = self._decision().wait
        assert wait is not None  # stop() went on: the decision was to wait
        self.run.retrying(self.exc, wait)


class Attempts:
    """The iterable `reliable.attempts` returns: iterate it with ``for`` or ``async for``.

    Each iteration starts a fresh loop (attempt 1, a new deadline), so one object can be reused.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_name", "_options")

    def __init__(self, options: Options, name: str) -> None:
        self._options = options
        self._name = name

    def __repr__(self) -> str:
        return f"<Attempts {self._name!r} {self._options.policy}>"

    def _start(self) -> tuple[Clock, _Hooks]:
        clock = _clock.current()
        return clock, _Hooks(Run(self._options, self._name, clock, clock.monotonic()))

    def __iter__(self) -> Iterator[Attempt]:
        if self._options.budget is not None:
            self._options.budget.record_call()
        clock, hooks = self._start()
        engine = tenacity.Retrying(
            sleep=clock.sleep,
            retry=hooks.retry,
            wait=hooks.wait,
            stop=hooks.stop,
            before_sleep=hooks.before_sleep,
            reraise=True,
        )
        for manager in engine:
            yield Attempt(manager, manager.retry_state.attempt_number)

    def __aiter__(self) -> AsyncIterator[Attempt]:
        return self._aiterate()

    async def _aiterate(self) -> AsyncIterator[Attempt]:
        if self._options.budget is not None:
            await self._options.budget.arecord_call()
        clock, hooks = self._start()
        engine = tenacity.AsyncRetrying(
            sleep=clock.asleep,
            retry=hooks.retry,
            wait=hooks.await_wait,  # type: ignore[arg-type]  # tenacity awaits async hooks; its stubs say sync
            stop=hooks.stop,
            before_sleep=hooks.before_sleep,
            reraise=True,
        )
        async for manager in engine:
            yield Attempt(manager, manager.retry_state.attempt_number)


def attempts(
    *,
    attempts: int | None = 5,
    deadline: Duration | timedelta | None = 60.0,
    wait_initial: Duration | timedelta = 0.5,
    wait_max: Duration | timedelta = 30.0,
    wait_exp_base: float = 2.0,
    jitter: Jitter | bool = "full",
    on: On = transient,
    budget: RetryBudget | None = None,
    max_server_wait: Duration | timedelta | None = None,
    name: str | None = None,
) -> Attempts:
    """Retry a block of code: ``for attempt in reliable.attempts(...): with attempt: ...`` (or ``async for``).

    The arguments mean what they mean for `reliable.retry`. A failure inside
    ``with attempt:`` is retried, or, when retries are over, re-raised (the caller's
    own exception, with a note) from the ``for`` statement. A block that succeeds ends the loop.

    >>> import reliable
    >>> calls = []
    >>> for attempt in reliable.attempts(attempts=3, wait_initial=0, wait_max=0):
    ...     with attempt:
    ...         calls.append(attempt.number)
    ...         if len(calls) < 2:
    ...             raise ConnectionResetError("peer reset")
    >>> calls
    [1, 2]

    Args:
        attempts: Most attempts in total, the first included.
        deadline: Most time from the first attempt's start to the last one's.
        wait_initial: Backoff ceiling after the first failure.
        wait_max: Cap of the computed backoff (never of a server's ``Retry-After``).
        wait_exp_base: Growth of the backoff ceiling per attempt.
        jitter: ``"full"``, ``"equal"`` or ``"none"`` (or True / False).
        on: Exception type(s) or predicate; default `reliable.transient`.
        budget: A shared `reliable.RetryBudget`.
        max_server_wait: The longest ``Retry-After`` to honour.
        name: The operation name in telemetry (default ``"reliable.attempts"``).

    Returns:
        An `Attempts` iterable.

    Raises:
        ConfigError: An argument is invalid.

    .. versionadded:: 0.1.0
    """
    options = make_options(
        attempts=attempts,
        deadline=deadline,
        wait_initial=wait_initial,
        wait_max=wait_max,
        wait_exp_base=wait_exp_base,
        jitter=jitter,
        on=on,
        retry_on_result=None,
        budget=budget,
        max_server_wait=max_server_wait,
        name=name,
    )
    return Attempts(options, options.name or "reliable.attempts")
