"""Validate the arguments of `reliable.retry` and `reliable.attempts` once, into an `Options` value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Union

from ._backoff import Jitter, Policy
from ._budget import RetryBudget
from ._classify import transient
from ._errors import ConfigError
from ._internal._durations import Duration, optional_seconds, seconds

__all__ = ["On", "Options", "make_options"]

On = Union[type[BaseException], tuple[type[BaseException], ...], Callable[[BaseException], bool]]
"""What ``on=`` accepts: exception type(s), or a predicate that says whether to retry an exception."""

_JITTERS: dict[Any, Jitter] = {"full": "full", "equal": "equal", "none": "none", True: "full", False: "none"}


@dataclass(frozen=True, slots=True)
class Options:
    """Everything one `reliable.retry` needs, validated."""

    policy: Policy
    on_types: tuple[type[BaseException], ...] | None
    """Retry exactly these exception types (``on=`` types), or None."""
    on_predicate: Callable[[BaseException], bool] | None
    """Retry when this says so (``on=`` predicate, other than `reliable.transient`), or None."""
    retry_on_result: Callable[[Any], bool] | None
    budget: RetryBudget | None
    name: str | None


def _fail(parameter: str, value: Any, fix: str) -> ConfigError:
    return ConfigError(f"{parameter}={value!r} is invalid; {fix}", parameter=parameter, value=value)


def make_options(
    *,
    attempts: int | None,
    deadline: Duration | timedelta | None,
    wait_initial: Duration | timedelta,
    wait_max: Duration | timedelta,
    wait_exp_base: float,
    jitter: Jitter | bool,
    on: On,
    retry_on_result: Callable[[Any], bool] | None,
    budget: RetryBudget | None,
    max_server_wait: Duration | timedelta | None,
    name: str | None,
) -> Options:
    """Check every argument and build `Options`, or raise `ConfigError` naming the first bad one."""
    if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1):
        raise _fail("attempts", attempts, "pass an int >= 1 (1 means no retries), or None for no limit")
    deadline_s = optional_seconds(deadline, "deadline", allow_zero=False)
    if attempts is None and deadline_s is None:
        raise _fail("deadline", deadline, "attempts=None and deadline=None would retry forever; bound one of them")
    initial = seconds(wait_initial, "wait_initial")
    cap = seconds(wait_max, "wait_max")
    if cap < initial:
        raise _fail("wait_max", wait_max, f"it must be >= wait_initial={initial:g}s")
    if isinstance(wait_exp_base, bool) or not isinstance(wait_exp_base, (int, float)) or not wait_exp_base >= 1:
        raise _fail("wait_exp_base", wait_exp_base, "pass a number >= 1 (2 doubles the backoff each attempt)")
    try:
        mode = _JITTERS[jitter]
    except (KeyError, TypeError):
        raise _fail("jitter", jitter, "pass 'full' (default), 'equal', 'none', True or False") from None
    server_cap = optional_seconds(max_server_wait, "max_server_wait")
    on_types, on_predicate = _parse_on(on)
    if retry_on_result is not None and not callable(retry_on_result):
        raise _fail("retry_on_result", retry_on_result, "pass a function that takes the result and returns a bool")
    if budget is not None and not isinstance(budget, RetryBudget):
        raise _fail("budget", budget, "pass a reliable.RetryBudget(...) or None")
    if name is not None and (not isinstance(name, str) or not name):
        raise _fail("name", name, "pass a non-empty string, or None to use the function's qualified name")
    policy = Policy(attempts, deadline_s, initial, cap, float(wait_exp_base), mode, server_cap)
    return Options(policy, on_types, on_predicate, retry_on_result, budget, name)


def _parse_on(on: On) -> tuple[tuple[type[BaseException], ...] | None, Callable[[BaseException], bool] | None]:
    fix = "pass an exception type, a tuple of them, or a function exc -> bool (default: reliable.transient)"
    if isinstance(on, type):
        if not issubclass(on, BaseException):
            raise _fail("on", on, fix)
        return (on,), None
    if isinstance(on, tuple):
        if not on or not all(isinstance(t, type) and issubclass(t, BaseException) for t in on):
            raise _fail("on", on, fix)
        return on, None
    if callable(on):
        return None, (None if on is transient else on)
    raise _fail("on", on, fix)
