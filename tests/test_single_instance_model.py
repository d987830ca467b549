"""The lock behaves like a model (Hypothesis `RuleBasedStateMachine`): file locks and store leases (every backend).

Several holders play separate processes: for file locks, each reaches the same directory
through another spelling of its path (so each has its own descriptors, and only the kernel's
``flock`` keeps them apart); for store leases, each uses the store through its own proxy
object. Background renewal is off: the machine renews explicitly, so every step is decided.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

import reliable
from reliable._internal import _clock
from reliable._lease_core import holder_from_record
from reliable._store_lease import StoreLease
from reliable.stores import Store
from reliable.testing import FakeClock

HOLDERS = 2
TTL = 3.25
"""Expiries fall on quarter seconds while the clock moves in half seconds: never on a boundary."""
SETTINGS = settings(max_examples=40, stateful_step_count=25, deadline=None)


class FileLockMachine(RuleBasedStateMachine):
    """Model: at most one holder; a free lock is always granted; tokens count acquisitions."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp())
        self.spellings = [str(self.root) + "/." * i for i in range(HOLDERS)]
        self.leases: dict[int, Any] = {}
        self.acquisitions = 0

    def teardown(self) -> None:
        for lease in self.leases.values():
            lease.release()
        shutil.rmtree(self.root, ignore_errors=True)

    @rule(who=st.integers(0, HOLDERS - 1))
    def acquire(self, who: int) -> None:
        lock = reliable.single_instance("model", lock_dir=self.spellings[who])
        if who in self.leases:
            with pytest.raises(reliable.AlreadyRunningError, match="re-entrant"):
                lock.acquire()
            return
        result = lock.acquire()
        if self.leases:
            assert result is reliable.SKIPPED
        else:
            self.acquisitions += 1
            assert isinstance(result, reliable.Lease)
            assert self.acquisitions == result.token
            self.leases[who] = result

    @precondition(lambda self: self.leases)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from(sorted(self.leases)))
        self.leases.pop(who).release()

    @precondition(lambda self: self.leases)
    @rule()
    def check(self) -> None:
        for lease in self.leases.values():
            lease.check()

    @invariant()
    def at_most_one_holder(self) -> None:
        assert len(self.leases) <= 1


class StoreLeaseMachine(RuleBasedStateMachine):
    """Model: a lease lives TTL seconds from its last renewal; a live lease is never granted twice, a dead one is
    granted to the next caller with a larger token; renew and check fail exactly when the model says it is dead;
    release deletes only a lease that is still the holder's."""

    store: Store

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(start=0.0)
        self.previous = _clock.install(self.clock)
        self.name = f"model-{uuid.uuid4().hex[:8]}"
        self.proxies = [_Proxy(self.store) for _ in range(HOLDERS)]
        self.leases: dict[int, Any] = {}
        self.ends: dict[int, float] = {}
        self.tokens: list[int] = []

    def teardown(self) -> None:
        for lease in self.leases.values():
            lease.release()
        _clock.install(self.previous)

    def live(self) -> list[int]:
        now = self.clock.time()
        return [who for who, end in self.ends.items() if end > now]

    @rule(who=st.integers(0, HOLDERS - 1))
    def acquire(self, who: int) -> None:
        lock = reliable.single_instance(self.name, store=self.proxies[who], ttl=TTL)
        if who in self.leases:
            with pytest.raises(reliable.AlreadyRunningError, match="re-entrant"):
                lock.acquire()
            return
        result = lock.acquire()
        if self.live():
            assert result is reliable.SKIPPED
            return
        assert isinstance(result, reliable.Lease)
        assert not self.tokens or result.token > self.tokens[-1]
        self.tokens.append(result.token)
        self.leases[who] = result
        self.ends[who] = self.clock.time() + TTL

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 4.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(who=st.integers(0, HOLDERS - 1))
    def take_over(self, who: int) -> None:
        """A holder pauses past its TTL (time moves on) and another process asks for the lock."""
        self.clock.advance(4.0)
        self.acquire(who)

    @precondition(lambda self: self.leases)
    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from(sorted(self.leases)))
        if who in self.live():
            self.leases[who].renew()
            self.ends[who] = self.clock.time() + TTL
        else:
            with pytest.raises(reliable.LeaseLostError):
                self.leases[who].renew()
            self.ends.pop(who, None)

    @precondition(lambda self: self.leases)
    @rule(data=st.data())
    def check(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from(sorted(self.leases)))
        if who in self.live():
            self.leases[who].check()
        else:
            with pytest.raises(reliable.LeaseLostError):
                self.leases[who].check()
            self.ends.pop(who, None)

    @precondition(lambda self: self.leases)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from(sorted(self.leases)))
        alive = who in self.live()
        self.leases.pop(who).release()
        self.ends.pop(who, None)
        record = self.store.get(f"lock:{self.name}:0")
        if alive:
            assert record is None

    @invariant()
    def store_agrees(self) -> None:
        live = self.live()
        assert len(live) <= 1
        record = self.store.get(f"lock:{self.name}:0")
        if live:
            assert record is not None
            assert self.leases[live[0]].token == holder_from_record(self.name, record).token


class _Proxy:
    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_file_lock_behaves_like_the_model() -> None:
    """Random sequences of acquire / re-enter / release / check on file locks match the model."""
    run_state_machine_as_test(FileLockMachine, settings=SETTINGS)


def test_store_lease_behaves_like_the_model(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random sequences of acquire / advance time / renew / check / release on store leases match the model."""
    monkeypatch.setattr(StoreLease, "start_renewer", lambda self: None)

    class Machine(StoreLeaseMachine):
        pass

    Machine.store = store
    run_state_machine_as_test(Machine, settings=SETTINGS)
