"""`Faults`: the fault injector, usable as a context manager or through the ``reliable_faults`` fixture."""

from __future__ import annotations

import functools
import random as _random
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from typing_extensions import Self

from .._errors import ConfigError
from .._internal import _clock
from .._internal._durations import Duration, seconds
from ._actions import CALL, Action, InjectedFault, Outcome, SimulatedCrash
from ._rules import (
    Chooser,
    ErrorSpec,
    Rule,
    count,
    detail_of,
    error_factory,
    kind_of,
    outcome_factory,
    point_name,
    probability,
)
from ._store_faults import FaultyStore
from ._targets import Patch, Target, locate

__all__ = ["ErrorSpec", "Faults", "Rule"]


class Faults:
    """Inject faults into the code under test: scripted outcomes, failures, latency, crashes, store faults.

    Everything is counted and seeded, never random by wall clock: the same *seed* gives the same
    faults on the same calls. Patches last until `undo` (or the end of the ``with`` block, or
    of the test with the ``reliable_faults`` fixture). Every injected fault is appended to `log`.

    Args:
        seed: Seeds every random choice (`random` rules, `FaultyStore.flaky`).
        rate: The default probability for `random` and `FaultyStore.flaky`.

    >>> import json
    >>> with Faults() as faults:
    ...     rule = faults.script("json:dumps", [ValueError("boom"), "ok", "canned"])
    ...     outcomes = []
    ...     for _ in range(4):
    ...         try:
    ...             outcomes.append(json.dumps(1))
    ...         except ValueError as exc:
    ...             outcomes.append(f"raised {exc}")
    >>> outcomes
    ['raised boom', '1', 'canned', '1']
    >>> [fault.kind for fault in faults.log], json.dumps(2)
    (['raise', 'return'], '2')

    .. versionadded:: 0.1.0
    """

    def __init__(self, *, seed: int = 0, rate: float = 0.1) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            msg = f"seed={seed!r} is not an int; pass an integer such as 1234"
            raise ConfigError(msg, parameter="seed", value=seed)
        self.seed = seed
        self.rate = probability(rate, "rate")
        self.log: list[InjectedFault] = []
        """Every fault injected so far, in order."""
        self._lock = threading.RLock()
        self._rules: dict[str, list[Rule]] = {}
        self._patches: dict[str, Patch] = {}
        self._stores: list[FaultyStore] = []
        self._streams: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<Faults seed={self.seed} rules={sum(len(r) for r in self._rules.values())} injected={len(self.log)}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.undo()

    # -- scheduling ------------------------------------------------------------------

    def script(self, target: Target, outcomes: Iterable[Any], *, then: Any = "ok") -> Rule:
        """Script the next calls of *target*, one outcome per call.

        An outcome is ``"ok"`` (call through), an exception instance or class (raised), an int
        (raised as `http_error` with that status), `Return(value)` (returns *value* as it is),
        or any other value (returned instead of calling; awaited callables return it from
        their coroutine). After the script, *then*
        applies to every call (``"ok"`` by default).

        Args:
            target: ``"module:attribute"``, ``"store.<operation>"``, ``(owner, "attribute")``, a bound
                method or a module-level function; sync or async.
            outcomes: The outcomes of the next calls, in order, e.g. ``[TimeoutError(), 503, "ok"]``.
            then: The outcome of every later call.

        Returns:
            The `Rule`; ``rule.calls`` counts the calls it saw.

        Raises:
            ConfigError: *target* cannot be found or patched, or an int outcome is not an HTTP status.
        """
        actions = [outcome_factory(o) for o in outcomes]
        later = outcome_factory(then)

        def choose(call: int) -> Action | None:
            make = actions[call - 1] if call <= len(actions) else later
            return None if make is None else make()

        return self._add(target, "script", choose)

    def fail(self, target: Target, *, times: int = 1, after: int = 0, error: ErrorSpec = None) -> Rule:
        """Make calls ``after + 1`` to ``after + times`` of *target* raise *error*.

        The default error is `StoreUnavailableError` at a store point and `ConnectionError` elsewhere.
        """
        count(times, "times", minimum=1)
        count(after, "after", minimum=0)
        make = error_factory(point_name(target), error)
        return self._add(
            target,
            "fail",
            lambda call: Action(outcome="raise", error=make()) if after < call <= after + times else None,
        )

    def random(self, target: Target, *, rate: float | None = None, error: ErrorSpec = None) -> Rule:
        """Make each call of *target* raise *error* with probability *rate* (default: the `Faults`' rate).

        The choices come from a generator seeded with the `Faults`' seed and the point, so the same
        seed fails the same calls, whatever other faults are scheduled.
        """
        chance = self.rate if rate is None else probability(rate, "rate")
        make = error_factory(point_name(target), error)
        rng = self._rng(f"random:{point_name(target)}")
        return self._add(
            target, "random", lambda _call: Action(outcome="raise", error=make()) if rng.random() < chance else None
        )

    def latency(self, target: Target, duration: Duration, *, times: int | None = None, after: int = 0) -> Rule:
        """Make calls of *target* take *duration* on the fake clock before they run (never a real sleep).

        Applies to every call after the first *after*, or to *times* of them. The wait goes through
        the library clock (``sleep``/``asleep``), so it appears in ``FakeClock.sleeps``.
        """
        delay = seconds(duration, "duration")
        if times is not None:
            count(times, "times", minimum=1)
        count(after, "after", minimum=0)

        def choose(call: int) -> Action | None:
            hit = call > after and (times is None or call <= after + times)
            return Action(delay=delay) if hit else None

        return self._add(target, "latency", choose)

    def crash(self, target: Target, *, after: int = 0, lands: bool = False) -> Rule:
        """Raise `SimulatedCrash` on call ``after + 1`` of *target*, as if the process died there.

        With *lands*, the call runs first and the crash follows, so its effect happened but the
        caller never learned of it (a payment charged, then the process was killed). At a store
        point (``"store.compare_and_set"``), the crash stops a primitive's completion from landing.
        """
        count(after, "after", minimum=0)
        point = point_name(target)
        outcome: Outcome = "call_then_raise" if lands else "raise"

        def choose(call: int) -> Action | None:
            if call != after + 1:
                return None
            return Action(outcome=outcome, error=SimulatedCrash(point, call, landed=lands))

        return self._add(target, "crash", choose)

    # -- stores ------------------------------------------------------------------------

    def wrap_store(self, store: Any, *, name: str | None = None) -> FaultyStore:
        """Wrap *store* in a `FaultyStore` driven by this injector's ``"store.*"`` rules and seed."""
        label = name or f"store{len(self._stores) + 1}"
        faulty = FaultyStore(
            store, decide=self.decide, record=self.record, rng=self._rng(f"store:{label}"), rate=self.rate, name=label
        )
        self._stores.append(faulty)
        return faulty

    # -- bookkeeping ----------------------------------------------------------------------

    def undo(self) -> None:
        """Remove every rule, restore every patched attribute, and make every wrapped store healthy."""
        with self._lock:
            patches = list(self._patches.values())
            self._patches.clear()
            self._rules.clear()
        for patch in reversed(patches):
            patch.restore()
        for store in self._stores:
            store.healthy()

    def injected(self, point: str | None = None, *, kind: str | None = None) -> list[InjectedFault]:
        """The entries of `log` at *point* and of *kind* (each filter optional)."""
        return [f for f in list(self.log) if (point is None or f.point == point) and (kind is None or f.kind == kind)]

    def decide(self, point: str, *also: str) -> Action:
        """The `Action` for the next call at *point*: every rule there sees the call, in the order added.

        Rules at the points *also* (e.g. ``"store.*"``) come next and are logged under *point*.
        Latency adds up; the first rule that raises or returns decides, and later rules do not see the call.
        """
        with self._lock:
            rules = [rule for name in (point, *also) for rule in self._rules.get(name, ())]
            delay = 0.0
            for rule in rules:
                rule.calls += 1
                action = rule._choose(rule.calls)
                if action is None:
                    continue
                rule.injected += 1
                self.record(point, kind_of(action), rule.calls, detail_of(action))
                delay += action.delay
                if action.outcome != "call":
                    return Action(delay, action.outcome, action.error, action.value)
        return Action(delay) if delay else CALL

    def record(self, point: str, kind: str, call: int, detail: str) -> None:
        """Append one entry to `log`."""
        self.log.append(InjectedFault(point, kind, call, detail, _clock.current().time()))

    def _add(self, target: Target, kind: str, choose: Chooser) -> Rule:
        point = point_name(target)
        with self._lock:
            if not point.startswith("store.") and point not in self._patches:
                patch = locate(target)
                patch.apply(functools.partial(self.decide, point))
                self._patches[point] = patch
            rule = Rule(self, point, kind, choose)
            self._rules.setdefault(point, []).append(rule)
        return rule

    def _remove(self, rule: Rule) -> None:
        with self._lock:
            rules = self._rules.get(rule.point, [])
            if rule in rules:
                rules.remove(rule)
            if rules:
                return
            self._rules.pop(rule.point, None)
            patch = self._patches.pop(rule.point, None)
        if patch is not None:
            patch.restore()

    def _rng(self, stream: str) -> _random.Random:
        """A generator for *stream* (a point or store), seeded by the seed, the stream and its count so far.

        Streams are independent: adding a fault elsewhere, or a store, never changes this one's choices.
        """
        with self._lock:
            self._streams[stream] = count = self._streams.get(stream, 0) + 1
        return _random.Random(f"{self.seed}:{stream}:{count}")
