"""Properties of `reliable.idempotent`: N calls with one key run once; a stateful model agrees with every call."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import reliable
from reliable._internal import _clock
from reliable.stores.memory import MemoryStore
from reliable.testing import FakeClock


@given(st.lists(st.integers(0, 5), min_size=1, max_size=30))
def test_n_calls_one_key_run_once(payloads: list[int]) -> None:
    """Any number of calls with one key (fingerprint off) run the function once and all return its result."""
    runs: list[int] = []
    store = MemoryStore()

    @reliable.idempotent(store=store, key=lambda payload: "the-key", fingerprint=None)
    def work(payload: int) -> int:
        runs.append(payload)
        return payload * 10

    results = [work(p) for p in payloads]

    assert ([payloads[0]], [payloads[0] * 10] * len(payloads)) == (runs, results)


@given(st.integers(2, 40))
@settings(max_examples=20, deadline=None)
def test_n_concurrent_tasks_one_key_run_once(n: int) -> None:
    """N concurrent tasks with one key run the function once and all return equal results."""
    runs: list[int] = []
    store = MemoryStore()

    @reliable.idempotent(store=store, key=lambda: "the-key")
    async def work() -> list[int]:
        runs.append(1)
        await asyncio.sleep(0)
        return [1, 2]

    async def main() -> list[list[int]]:
        return await asyncio.gather(*(work() for _ in range(n)))

    assert ([1], [[1, 2]] * n) == (runs, asyncio.run(main()))


TTL = 100.0


class IdempotencyModel(RuleBasedStateMachine):
    """Calls with a few keys and payloads, failures and time passing, checked against a dict of live records."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(start=0)
        self.previous = _clock.install(self.clock)
        self.store = MemoryStore()
        self.fail_next = False
        self.runs = 0
        self.records: dict[str, tuple[int, Any, float]] = {}  # key -> (payload, outcome, expires_at)

        @reliable.idempotent(
            store=self.store, key=lambda key, payload: key, ttl=TTL, cache_errors=LookupError, name="model"
        )
        def work(key: str, payload: int) -> tuple[str, int, int]:
            self.runs += 1
            if self.fail_next:
                self.fail_next = False
                raise ConnectionError("transient")
            if payload == 3:
                raise LookupError(f"no item {payload}")
            return (key, payload, self.runs)

        self.work = work

    def teardown(self) -> None:
        _clock.install(self.previous)

    @rule(seconds=st.sampled_from([1.0, 50.0, 99.0, 100.0, 150.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: not self.fail_next)
    @rule()
    def next_call_fails(self) -> None:
        self.fail_next = True

    @rule(key=st.sampled_from(["a", "b", "c"]), payload=st.integers(0, 3))
    def call(self, key: str, payload: int) -> None:
        now = self.clock.time()
        live = self.records.get(key)
        if live is not None and live[2] <= now:
            live = None
        runs = self.runs
        try:
            outcome: Any = self.work(key, payload)
        except Exception as exc:
            outcome = exc
        if live is not None:
            if live[0] != payload:
                assert isinstance(outcome, reliable.IdempotencyConflictError)
            elif isinstance(live[1], LookupError):
                assert (LookupError, live[1].args) == (type(outcome), outcome.args)
            else:
                assert live[1] == outcome
            assert runs == self.runs
            return
        assert runs + 1 == self.runs
        if isinstance(outcome, ConnectionError):
            self.records.pop(key, None)
        else:
            expected = LookupError if payload == 3 else tuple
            assert isinstance(outcome, expected)
            self.records[key] = (payload, outcome, now + TTL)

    @invariant()
    def store_has_only_live_completed_records(self) -> None:
        now = self.clock.time()
        live = sorted(k for k, (_, _, expires) in self.records.items() if expires > now)
        assert live == sorted(r.key.rsplit(":", 1)[1] for r in self.store.scan("idempotent:model:"))


TestIdempotencyModel = IdempotencyModel.TestCase
TestIdempotencyModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
