"""The pure decision core of `reliable.retry`: after a failed attempt, wait how long, or give up?

Nothing here reads a clock, sleeps, draws random numbers or touches a store: the
drivers pass in the attempt number, the time elapsed on the library clock, what the
classifier said and a random number in ``[0, 1)``, and get a `Decision` back. That
is what the Hypothesis properties in ``tests/test_retry_core.py`` pin down.

Backoff (``n`` is the number of the attempt that just failed, from 1)::

    ceiling(n) = min(wait_max, wait_initial * wait_exp_base ** (n - 1))
    "full"  jitter: uniform in [0, ceiling(n)]                 (the default; AWS "Full Jitter")
    "equal" jitter: uniform in [ceiling(n) / 2, ceiling(n)]
    "none":         exactly ceiling(n)

A wait the server asked for (``Retry-After``) replaces the backoff: `wait_max` never
shortens it, because retrying before the server allows only earns another 429.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = ["Decision", "Jitter", "Policy", "backoff", "decide"]

Jitter = Literal["full", "equal", "none"]


@dataclass(frozen=True, slots=True)
class Policy:
    """The validated settings of one `reliable.retry` (all durations in seconds)."""

    attempts: int | None
    """Most attempts in total, the first included; None for no limit (the deadline still applies)."""
    deadline: float | None
    """Most seconds from the start of the first attempt to the start of the last; None for none."""
    wait_initial: float
    wait_max: float
    wait_exp_base: float
    jitter: Jitter
    max_server_wait: float | None
    """The longest server-requested wait the caller honours; a longer request gives up at once."""


class Decision(NamedTuple):
    """What to do after a failed attempt: sleep `wait` seconds then try again, or give up (`wait` is None).

    A named tuple rather than a frozen dataclass: one is made per failed attempt, and a
    tuple is several times cheaper to create.
    """

    wait: float | None
    reason: str
    """Why: shown in the give-up note and the telemetry."""

    @property
    def give_up(self) -> bool:
        return self.wait is None


_tuple_new = tuple.__new__


def backoff(policy: Policy, attempt: int, rand: float) -> float:
    """The computed wait after failed attempt number *attempt* (from 1), jittered with *rand* in ``[0, 1)``."""
    try:
        ceiling = min(policy.wait_max, policy.wait_initial * policy.wait_exp_base ** (attempt - 1))
    except OverflowError:
        ceiling = policy.wait_max
    if policy.jitter == "full":
        return ceiling * rand
    if policy.jitter == "equal":
        return ceiling / 2 + ceiling / 2 * rand
    return ceiling


def decide(
    policy: Policy,
    attempt: int,
    elapsed: float,
    retryable: bool,
    why: str,
    requested: float | None,
    rand: float,
) -> Decision:
    """Decide what follows failed attempt number *attempt*.

    Args:
        policy: The settings.
        attempt: How many attempts have been made, this one included (SDK-internal retries count too).
        elapsed: Seconds since the first attempt started, on the library clock.
        retryable: Whether the classifier (or the caller's ``on=``) allows a retry.
        why: The classifier's reason, used when *retryable* is false.
        requested: Seconds the server asked to wait (``Retry-After``), or None.
        rand: A random number in ``[0, 1)`` for the jitter.

    Returns:
        A `Decision`. The order of the checks is the contract: not retryable; attempts
        exhausted; deadline passed; a server-requested wait longer than the time left
        (give up at once rather than sleep in vain); one longer than *max_server_wait*;
        then the wait is the server's request, else the backoff, and a backoff that
        would start the next attempt at or after the deadline gives up too.
    """
    if not retryable:
        return Decision(None, why)
    attempts = policy.attempts
    if attempts is not None and attempt >= attempts:
        return Decision(None, f"all {attempts} attempts failed")
    deadline = policy.deadline
    if deadline is None:
        remaining = None
    else:
        remaining = deadline - elapsed
        if remaining <= 0:
            return Decision(None, f"the {deadline:g}s deadline passed")
    if requested is not None:
        if remaining is not None and requested >= remaining:
            return Decision(
                None,
                f"the server asked to wait {requested:.3g}s but only {remaining:.3g}s "
                f"of the {deadline:g}s deadline were left",
            )
        if policy.max_server_wait is not None and requested > policy.max_server_wait:
            return Decision(
                None,
                f"the server asked to wait {requested:.3g}s, more than max_server_wait={policy.max_server_wait:g}s",
            )
        return Decision(requested, "the server asked to wait")
    # `backoff`, inlined: this runs once per failed attempt
    try:
        ceiling = policy.wait_initial * policy.wait_exp_base ** (attempt - 1)
    except OverflowError:
        ceiling = policy.wait_max
    if not ceiling <= policy.wait_max:  # also NaN, as min() in `backoff`
        ceiling = policy.wait_max
    jitter = policy.jitter
    if jitter == "full":
        wait = ceiling * rand
    elif jitter == "equal":
        wait = ceiling / 2 + ceiling / 2 * rand
    else:
        wait = ceiling
    if remaining is not None and wait >= remaining:
        return Decision(
            None, f"the next attempt, after a {wait:.3g}s backoff, would start after the {deadline:g}s deadline"
        )
    return _tuple_new(Decision, (wait, "backoff"))  # Decision(wait, "backoff") without its Python-level __new__
