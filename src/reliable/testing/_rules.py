"""Rules: what one scheduled fault does to the calls at its point, and the checks of their arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union, cast

from typing_extensions import Self

from .._errors import ConfigError, StoreUnavailableError
from ._actions import Action, Return, SimulatedCrash
from ._http_errors import http_error
from ._store_faults import STORE_OPERATIONS
from ._targets import Target, locate

if TYPE_CHECKING:
    from ._faults import Faults

__all__ = [
    "Chooser",
    "ErrorSpec",
    "Rule",
    "count",
    "detail_of",
    "error_factory",
    "kind_of",
    "outcome_factory",
    "point_name",
    "probability",
    "store_down",
]

ErrorSpec = Union[BaseException, type[BaseException], int, Callable[[], BaseException], None]
"""An exception instance or class, an HTTP status (raised as `http_error`), a factory, or None for the default."""

Chooser = Callable[[int], Union[Action, None]]


class Rule:
    """One scheduled fault at one point; returned by `Faults.script`, `fail`, `random`, `latency` and `crash`.

    Attributes:
        point: Where it applies (``"myjob.api:fetch"``, ``"store.get"``, ...).
        kind: ``"script"``, ``"fail"``, ``"random"``, ``"latency"`` or ``"crash"``.
        calls: How many calls at *point* this rule has seen.
        injected: How many of those it changed.

    A rule is also a context manager: leaving the block removes it (and undoes the patch
    once no rule is left at its point).

    .. versionadded:: 0.1.0
    """

    def __init__(self, faults: Faults, point: str, kind: str, choose: Chooser) -> None:
        self.point = point
        self.kind = kind
        self.calls = 0
        self.injected = 0
        self._faults = faults
        self._choose = choose

    def __repr__(self) -> str:
        return f"<Rule {self.kind} at {self.point!r}: {self.injected} injected in {self.calls} calls>"

    def remove(self) -> None:
        """Stop injecting this fault."""
        self._faults._remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def outcome_factory(outcome: Any) -> Callable[[], Action] | None:
    """A factory of the `Action` for one scripted outcome (None: call through), checked now."""
    if isinstance(outcome, str) and outcome == "ok":
        return None
    if isinstance(outcome, Return):
        returned = Action(outcome="return", value=outcome.value)
        return lambda: returned
    if isinstance(outcome, BaseException):
        action = Action(outcome="raise", error=outcome)
        return lambda: action
    if isinstance(outcome, type) and issubclass(outcome, BaseException):
        return lambda: Action(outcome="raise", error=outcome())
    if isinstance(outcome, int) and not isinstance(outcome, bool):
        http_error(outcome)  # validates the status now, before any call
        return lambda: Action(outcome="raise", error=http_error(outcome))
    canned = Action(outcome="return", value=outcome)
    return lambda: canned


def error_factory(point: str, error: ErrorSpec) -> Callable[[], BaseException]:
    """A factory of the exception a rule at *point* raises, checked now."""
    if error is None:
        if point.startswith("store."):
            return lambda: store_down(point)
        return lambda: ConnectionError(f"connection failed at {point!r} (injected by reliable.testing)")
    if isinstance(error, BaseException):
        return lambda: error
    if isinstance(error, type) and issubclass(error, BaseException):
        cls: type[BaseException] = error
        return lambda: cls()
    if isinstance(error, int) and not isinstance(error, bool):
        http_error(error)
        return lambda: http_error(error)
    if callable(error):
        return cast("Callable[[], BaseException]", error)
    msg = f"error={error!r} is not an exception, exception class, HTTP status or factory"
    raise ConfigError(msg, parameter="error", value=error)


def store_down(point: str) -> BaseException:
    error = StoreUnavailableError(f"{point} failed: store unreachable (injected by reliable.testing)", address="fault")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused (injected)")
    return error


def point_name(target: Target) -> str:
    if isinstance(target, str) and target.startswith("store."):
        operation = target[len("store.") :]
        if operation != "*" and operation not in STORE_OPERATIONS:
            msg = f"store fault point {target!r} is unknown; use 'store.*' or one of: " + ", ".join(
                f"store.{op}" for op in STORE_OPERATIONS
            )
            raise ConfigError(msg, parameter="target", value=target)
        return target
    return locate(target).point


def kind_of(action: Action) -> str:
    if isinstance(action.error, SimulatedCrash):
        return "crash"
    if action.outcome == "call":
        return "latency"
    return "raise" if action.outcome == "raise" else "return"


def detail_of(action: Action) -> str:
    if action.outcome == "call":
        return f"{action.delay:g}s"
    if action.outcome == "return":
        return repr(action.value)
    return f"{type(action.error).__name__}: {action.error}"


def probability(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        msg = f"{name}={value!r} is not a probability; pass a number from 0 to 1, e.g. 0.2"
        raise ConfigError(msg, parameter=name, value=value)
    return float(value)


def count(value: Any, name: str, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"{name}={value!r} is not a whole number >= {minimum}"
        raise ConfigError(msg, parameter=name, value=value)
