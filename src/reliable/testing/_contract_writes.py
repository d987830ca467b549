"""Store contract checks of what each write does to a record: versions, expiry and counters.

Every ``check_*`` function here runs on the blocking methods and on the async twins
(`reliable.testing._contract.CHECKS` collects them by name).
"""

from __future__ import annotations

from .._errors import StoreError
from ._contract_base import SLACK, StoreFactory, _eq, _fresh, _raises, _true
from ._fake_clock import FakeClock

# -- writes and versions -----------------------------------------------------------------


def check_get_absent(make_store: StoreFactory, clock: FakeClock) -> None:
    """A key never written reads as None."""
    with _fresh(make_store) as store:
        _eq(None, store.get("absent"), "get() of a key never written")


def check_put_if_absent(make_store: StoreFactory, clock: FakeClock) -> None:
    """put_if_absent creates once; later calls return the live record and created=False."""
    with _fresh(make_store) as store:
        record, created = store.put_if_absent("k", {"n": 1})
        _eq((True, "k", {"n": 1}, None), (created, record.key, record.value, record.expires_at), "first put")
        again, created_again = store.put_if_absent("k", {"n": 2}, ttl=5)
        _eq((False, record), (created_again, again), "second put returns the record already there")
        _eq(record, store.get("k"), "get() after put")


def check_put_if_absent_ttl(make_store: StoreFactory, clock: FakeClock) -> None:
    """A TTL sets expires_at to the store's now() plus the TTL; an int TTL works too."""
    with _fresh(make_store) as store:
        record, _ = store.put_if_absent("k", "v", ttl=30)
        _true(record.expires_at is not None, "put with ttl has an expiry")
        _true(abs(record.expires_at - 30 - store.now()) <= SLACK, f"expires_at {record.expires_at} is now()+30")
        _eq(record, store.get("k"), "get() returns the expiry written")


def check_compare_and_set(make_store: StoreFactory, clock: FakeClock) -> None:
    """compare_and_set writes only over the live record's version, and returns the new record."""
    with _fresh(make_store) as store:
        _eq(None, store.compare_and_set("k", 1, version=1), "CAS on an absent key")
        first, _ = store.put_if_absent("k", 1)
        second = store.compare_and_set("k", 2, version=first.version)
        _true(second is not None and second.version > first.version, f"CAS succeeds with a newer version: {second}")
        _eq(("k", 2, None), (second.key, second.value, second.expires_at), "the CAS result")
        _eq(None, store.compare_and_set("k", 3, version=first.version), "CAS with a stale version")
        _eq(second, store.get("k"), "a failed CAS leaves the record alone")


def check_compare_and_set_ttl(make_store: StoreFactory, clock: FakeClock) -> None:
    """Each write sets its own expiry: CAS with a TTL sets one, CAS without clears it."""
    with _fresh(make_store) as store:
        first, _ = store.put_if_absent("k", 1)
        timed = store.compare_and_set("k", 2, version=first.version, ttl=10)
        _true(timed is not None and timed.expires_at is not None, f"CAS with ttl sets an expiry: {timed}")
        plain = store.compare_and_set("k", 3, version=timed.version)
        _eq(None, plain and plain.expires_at, "CAS without ttl clears the expiry")
        clock.advance(11)
        _eq(3, store.get("k").value, "the record no longer expires")


def check_set(make_store: StoreFactory, clock: FakeClock) -> None:
    """set writes unconditionally and returns the record, with a newer version each time."""
    with _fresh(make_store) as store:
        first = store.set("k", "a")
        second = store.set("k", "b", ttl=5)
        _eq(("a", "b"), (first.value, second.value), "set values")
        _true(second.version > first.version, "set gives a newer version")
        _eq(second, store.get("k"), "get() after set")


def check_delete(make_store: StoreFactory, clock: FakeClock) -> None:
    """delete removes the live record, only at its version when one is given."""
    with _fresh(make_store) as store:
        _eq(False, store.delete("k"), "delete of an absent key")
        record = store.set("k", 1)
        _eq(False, store.delete("k", version=record.version + 1000), "delete with another version")
        _eq(record, store.get("k"), "a refused delete keeps the record")
        _eq(True, store.delete("k", version=record.version), "delete with the live version")
        _eq(None, store.get("k"), "get() after delete")
        store.set("k", 2)
        _eq((True, None), (store.delete("k"), store.get("k")), "delete without a version")


def check_versions_grow_store_wide(make_store: StoreFactory, clock: FakeClock) -> None:
    """Every write of any key gets a version above all earlier ones."""
    with _fresh(make_store) as store:
        versions = [
            store.put_if_absent("a", 1)[0].version,
            store.set("b", 1).version,
            store.compare_and_set("a", 2, version=store.get("a").version).version,
            (store.incr("c"), store.get("c").version)[1],
            store.set("a", 3).version,
        ]
        _eq(sorted(set(versions)), versions, "versions strictly increase across keys")


def check_versions_not_reused_after_delete(make_store: StoreFactory, clock: FakeClock) -> None:
    """A key deleted and created again gets a new version; the old one cannot CAS or delete it."""
    with _fresh(make_store) as store:
        old, _ = store.put_if_absent("k", "holder-1")
        store.delete("k", version=old.version)
        new, created = store.put_if_absent("k", "holder-2")
        _true(created and new.version > old.version, f"recreated record {new} has a newer version than {old}")
        _eq(None, store.compare_and_set("k", "stale", version=old.version), "CAS with the deleted version")
        _eq(False, store.delete("k", version=old.version), "delete with the deleted version")
        _eq("holder-2", store.get("k").value, "the new holder's value survives")


def check_versions_not_reused_after_expiry(make_store: StoreFactory, clock: FakeClock) -> None:
    """A key that expired and was created again gets a new version; the stale holder is refused."""
    with _fresh(make_store) as store:
        old, _ = store.put_if_absent("lease", "holder-1", ttl=5)
        clock.advance(6)
        new, created = store.put_if_absent("lease", "holder-2", ttl=5)
        _true(created and new.version > old.version, f"recreated record {new} has a newer version than {old}")
        _eq(None, store.compare_and_set("lease", "stale", version=old.version), "CAS with the expired version")
        _eq(False, store.delete("lease", version=old.version), "delete with the expired version")
        _eq("holder-2", store.get("lease").value, "the new holder's value survives")


def check_versions_stay_above_gone_keys(make_store: StoreFactory, clock: FakeClock) -> None:
    """A new key gets a version above every earlier one even after the key holding the highest version was
    deleted or expired (`single_instance` uses a claim's version as its fencing token, across slots)."""
    with _fresh(make_store) as store:
        versions = [store.set("a", 1).version, store.put_if_absent("b", 1)[0].version]
        store.delete("b")
        versions.append(store.put_if_absent("c", 1, ttl=5)[0].version)
        clock.advance(6)
        versions.append(store.put_if_absent("d", 1)[0].version)
        _eq(sorted(set(versions)), versions, "versions strictly increase past deleted and expired keys")


# -- expiry ----------------------------------------------------------------------------------


def check_expiry_hides_records(make_store: StoreFactory, clock: FakeClock) -> None:
    """A record is live until its expiry and invisible to get and scan from then on."""
    with _fresh(make_store) as store:
        store.put_if_absent("t:1", "v", ttl=10)
        clock.advance(9)
        _eq(["t:1"], [r.key for r in store.scan("t:")], "scan before expiry")
        _eq("v", store.get("t:1").value, "get before expiry")
        clock.advance(2)
        _eq((None, []), (store.get("t:1"), store.scan("t:")), "get and scan after expiry")


def check_expiry_counts_as_absent_for_writes(make_store: StoreFactory, clock: FakeClock) -> None:
    """Writes treat an expired record as absent: put creates, CAS and delete refuse, incr restarts."""
    with _fresh(make_store) as store:
        old, _ = store.put_if_absent("k", "old", ttl=1)
        store.set("n", b"not a counter", ttl=1)
        clock.advance(2)
        _eq(None, store.compare_and_set("k", "x", version=old.version), "CAS on an expired record")
        _eq(False, store.delete("k"), "delete of an expired record")
        record, created = store.put_if_absent("k", "new")
        _eq((True, "new"), (created, record.value), "put_if_absent over an expired record")
        _eq(1, store.incr("n"), "incr over an expired record starts from 0")
        _eq(1, store.get("n").value, "the new counter is an int, whatever the expired record held")


# -- counters ----------------------------------------------------------------------------------


def check_incr(make_store: StoreFactory, clock: FakeClock) -> None:
    """incr adds to an int (absent counts as 0), returns the new value, and bumps the version."""
    with _fresh(make_store) as store:
        _eq([1, 2, 7, 4], [store.incr("n"), store.incr("n"), store.incr("n", 5), store.incr("n", -3)], "incr")
        before = store.get("n")
        _eq((4, None), (before.value, before.expires_at), "the counter is an int record without expiry")
        store.incr("n", 0)
        _true(store.get("n").version > before.version, "incr writes a new version")
        store.set("big", 2**70)
        _eq(2**70 + 1, store.incr("big"), "incr on a big int")


def check_incr_window(make_store: StoreFactory, clock: FakeClock) -> None:
    """incr's TTL applies when it creates the counter; later calls keep that window until it ends."""
    with _fresh(make_store) as store:
        _eq(1, store.incr("w", ttl=10), "first incr in the window")
        first_expiry = store.get("w").expires_at
        clock.advance(5)
        _eq(2, store.incr("w", ttl=10), "second incr in the window")
        _eq(first_expiry, store.get("w").expires_at, "later incr keeps the window's expiry")
        clock.advance(6)
        _eq(1, store.incr("w", ttl=10), "first incr of the next window")
        _true(store.get("w").expires_at > first_expiry, "the next window has a later expiry")


def check_incr_refuses_non_int(make_store: StoreFactory, clock: FakeClock) -> None:
    """incr on a key holding anything but an int raises StoreError and changes nothing."""
    with _fresh(make_store) as store:
        for value in ("3", 1.5, True, None, [1], {"n": 1}, b"1"):
            record = store.set("k", value)
            _raises(StoreError, store.incr, "k", what=f"incr on {value!r}")
            _eq(record, store.get("k"), f"a refused incr leaves {value!r} alone")
