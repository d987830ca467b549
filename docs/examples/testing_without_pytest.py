"""reliable.testing without pytest: the fault injector, the fake clock and telemetry capture as context managers.

Run it: ``python docs/examples/testing_without_pytest.py``. It takes no real time: the 429's
30 s Retry-After and the crashed holder's 60 s lease pass on a fake clock.
"""

from __future__ import annotations

import reliable
from reliable.stores.memory import MemoryStore
from reliable.testing import FakeClock, Faults, SimulatedCrash, capture_telemetry, http_error, installed

CHARGES: list[str] = []


def call_payment_api(order: str) -> str:
    """The side effect: a call to a payment provider in real life."""
    CHARGES.append(order)
    return f"receipt for {order}"


@reliable.retry(attempts=3, deadline=120)
@reliable.idempotent(key=lambda order: f"order:{order}", lease="60s", name="charge")
def charge(order: str) -> str:
    return call_payment_api(order)


def main() -> None:
    clock = FakeClock()
    with installed(clock), Faults(seed=1) as faults, capture_telemetry() as telemetry:
        # The default store, wrapped so that faults reach it (and a crashed process cannot clean up in it).
        reliable.configure(store=faults.wrap_store(MemoryStore()))

        # A 429 asking for 30 s: retried after exactly 30 s of fake time.
        faults.script(f"{__name__}:call_payment_api", [http_error(429, retry_after=30)])
        assert "receipt for A-1" == charge("A-1")
        assert [30.0] == clock.sleeps

        # The process dies inside the call: the claim stays until its lease ends, then the next call takes over.
        faults.crash(f"{__name__}:call_payment_api")
        try:
            charge("A-2")
        except SimulatedCrash as crash:
            print("crashed:", crash)
        assert "receipt for A-2" == charge("A-2")
        assert "receipt for A-2" == charge("A-2")  # a replay: no second charge

    assert ["A-1", "A-2"] == CHARGES
    assert clock.advanced >= 90  # the 30 s Retry-After, then the crashed holder's 60 s lease
    print("charges:", CHARGES, "| fake time passed:", f"{clock.advanced:.0f}s")
    print("events:", dict(telemetry.counts()))
    print("faults:", [(fault.point, fault.kind) for fault in faults.log])


if __name__ == "__main__":
    main()
