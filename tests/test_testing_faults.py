"""reliable.testing.Faults: scripted outcomes, failures, seeded random faults, latency and crashes on any callable."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from reliable import ConfigError
from reliable.stores.memory import MemoryStore
from reliable.testing import FakeClock, Faults, InjectedFault, Return, SimulatedCrash, installed


def fetch(item: str) -> str:
    """A module-level function, patched by name in these tests."""
    return f"real {item}"


async def afetch(item: str) -> str:
    """An async module-level function."""
    return f"async real {item}"


class Client:
    """A class whose methods are patched on the class or on one instance."""

    prefix = "client"

    def get(self, item: str) -> str:
        return f"{self.prefix} {item}"

    @staticmethod
    def version() -> str:
        return "1.0"

    @classmethod
    def kind(cls) -> str:
        return cls.__name__


class Slotted:
    """An object that cannot take instance attributes."""

    __slots__ = ()

    def get(self) -> str:
        return "slotted"


def outcomes(call: Any, times: int) -> list[str]:
    """Call *call* *times* times and describe each outcome."""
    seen = []
    for _ in range(times):
        try:
            seen.append(repr(call()))
        except Exception as exc:
            seen.append(f"{type(exc).__name__}")
    return seen


def test_script_by_name_raises_returns_and_calls_through() -> None:
    """A script by 'module:attribute' raises exceptions, raises ints as HTTP errors, returns values, calls through."""
    with Faults() as faults:
        faults.script(f"{__name__}:fetch", [TimeoutError(), 503, "ok", "canned"])

        seen = outcomes(lambda: fetch("a"), 5)

    assert ["TimeoutError", "HTTPStatusError", "'real a'", "'canned'", "'real a'"] == seen


def test_script_int_is_a_fresh_http_error_each_time() -> None:
    """Each int outcome raises its own HTTP error with that status."""
    with Faults() as faults:
        faults.script(f"{__name__}:fetch", [429, 429])
        errors = []
        for _ in range(2):
            with pytest.raises(Exception) as info:
                fetch("x")
            errors.append(info.value)

    assert [429, 429] == [e.response.status_code for e in errors]  # type: ignore[attr-defined]
    assert errors[0] is not errors[1]


def test_script_exception_class_is_instantiated_per_call() -> None:
    """An exception class in a script is raised as a new instance on each call."""
    with Faults() as faults:
        faults.script(f"{__name__}:fetch", [ValueError, ValueError])
        raised = []
        for _ in range(2):
            with pytest.raises(ValueError) as info:
                fetch("x")
            raised.append(info.value)

    assert raised[0] is not raised[1]


def test_script_then_applies_after_the_script() -> None:
    """After the scripted outcomes, every call gets *then*."""
    with Faults() as faults:
        faults.script(f"{__name__}:fetch", ["first"], then=ConnectionError())

        seen = outcomes(lambda: fetch("a"), 3)

    assert ["'first'", "ConnectionError", "ConnectionError"] == seen


def test_undo_restores_the_original() -> None:
    """Leaving the Faults block restores the patched attribute."""
    original = fetch

    with Faults() as faults:
        faults.script(f"{__name__}:fetch", ["patched"])
        patched = fetch

    assert patched is not original
    assert fetch is original
    assert "real b" == fetch("b")


def test_rule_as_context_manager_removes_only_itself() -> None:
    """A rule used as a context manager is removed at the end of its block; the patch goes with the last rule."""
    with Faults() as faults:
        with faults.fail(f"{__name__}:fetch", times=5):
            inside = outcomes(lambda: fetch("a"), 1)
        after = outcomes(lambda: fetch("a"), 1)
        restored = globals()["fetch"].__name__ == "fetch" and not hasattr(globals()["fetch"], "__wrapped__")

    assert (["ConnectionError"], ["'real a'"], True) == (inside, after, restored)


def test_script_by_function_object() -> None:
    """A module-level function object is patched where its module defines it."""
    with Faults() as faults:
        rule = faults.script(fetch, ["canned"])

        result = fetch("a")

    assert ("canned", f"{__name__}:fetch", 1) == (result, rule.point, rule.calls)


def test_script_method_on_class_by_name() -> None:
    """'module:Class.method' patches the method for every instance, receiving self."""
    with Faults() as faults:
        faults.script(f"{__name__}:Client.get", [KeyError("x"), "ok"])

        seen = outcomes(lambda: Client().get("a"), 2)

    assert ["KeyError", "'client a'"] == seen
    assert "get" in vars(Client)


def test_script_bound_method_patches_only_that_instance() -> None:
    """A bound method target patches that instance, as one patches `client.chat.completions.create`."""
    patched, other = Client(), Client()

    with Faults() as faults:
        faults.script(patched.get, [503])
        seen = outcomes(lambda: patched.get("a"), 1) + outcomes(lambda: other.get("a"), 1)

    assert ["HTTPStatusError", "'client a'"] == seen
    assert "get" not in vars(patched)


def test_script_owner_and_attribute_tuple() -> None:
    """(owner, 'attribute') patches that attribute of that object."""
    client = Client()

    with Faults() as faults:
        faults.script((client, "get"), ["canned"])
        result = client.get("a")

    assert ("canned", "client a") == (result, client.get("a"))


def test_static_and_class_methods_keep_their_binding() -> None:
    """Static and class methods stay callable on the class and on instances once patched."""
    with Faults() as faults:
        faults.script(f"{__name__}:Client.version", ["ok", "ok"])
        faults.script(f"{__name__}:Client.kind", ["ok", "ok"])

        seen = [Client.version(), Client().version(), Client.kind(), Client().kind()]

    assert ["1.0", "1.0", "Client", "Client"] == seen
    assert isinstance(vars(Client)["version"], staticmethod)
    assert isinstance(vars(Client)["kind"], classmethod)


def test_async_callable_is_scripted_when_awaited() -> None:
    """An async target stays async: scripted errors raise and values return when the coroutine is awaited."""

    async def main() -> list[str]:
        seen = []
        for _ in range(3):
            try:
                seen.append(await afetch("a"))
            except TimeoutError:
                seen.append("TimeoutError")
        return seen

    with Faults() as faults:
        faults.script(f"{__name__}:afetch", [TimeoutError(), "canned", "ok"])
        seen = asyncio.run(main())

    assert ["TimeoutError", "canned", "async real a"] == seen


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("no_colon_here", "module:attribute"),
        ("reliable_no_such_module:fetch", "cannot import module"),
        (f"{__name__}:missing", "has no attribute 'missing'"),
        ("store.explode", "store fault point 'store.explode' is unknown"),
        (lambda: None, "cannot find"),
        ((object(), 1), "is not (owner, 'attribute')"),
        ((Client(), "nope"), "has no attribute 'nope'"),
        (42, "is not a callable"),
    ],
)
def test_bad_targets_are_config_errors(target: Any, fragment: str) -> None:
    """A target that cannot be found is a ConfigError that says how to name it, before anything is patched."""
    with Faults() as faults, pytest.raises(ConfigError) as info:
        faults.fail(target)

    assert fragment in str(info.value)


def test_unpatchable_object_is_a_config_error() -> None:
    """An instance without __dict__ cannot be patched; the error says to patch the class instead."""
    with Faults() as faults, pytest.raises(ConfigError, match="patch the class instead"):
        faults.fail(Slotted().get)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda f: f.script(f"{__name__}:fetch", [999]), "not an HTTP status"),
        (lambda f: f.fail(f"{__name__}:fetch", times=0), "times=0"),
        (lambda f: f.fail(f"{__name__}:fetch", after=-1), "after=-1"),
        (lambda f: f.fail(f"{__name__}:fetch", error="boom"), "error='boom'"),
        (lambda f: f.random(f"{__name__}:fetch", rate=1.5), "rate=1.5 is not a probability"),
        (lambda f: f.latency(f"{__name__}:fetch", "soon"), "duration='soon'"),
        (lambda f: f.latency(f"{__name__}:fetch", 1, times=0), "times=0"),
        (lambda f: f.crash(f"{__name__}:fetch", after=True), "after=True"),
    ],
)
def test_bad_arguments_are_config_errors(call: Any, fragment: str) -> None:
    """Bad arguments raise ConfigError naming the parameter when the fault is scheduled."""
    with Faults() as faults, pytest.raises(ConfigError) as info:
        call(faults)

    assert fragment in str(info.value)
    assert fetch.__name__ == "fetch"
    assert not hasattr(fetch, "__wrapped__")


def test_bad_constructor_arguments() -> None:
    """Faults(seed=..., rate=...) are checked."""
    with pytest.raises(ConfigError, match="seed='x'"):
        Faults(seed="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rate=2"):
        Faults(rate=2)


def test_fail_counts_calls_with_after_and_times() -> None:
    """fail(after=1, times=2) lets call 1 through, fails calls 2 and 3, lets the rest through."""
    with Faults() as faults:
        rule = faults.fail(f"{__name__}:fetch", after=1, times=2)

        seen = outcomes(lambda: fetch("a"), 5)

    assert ["'real a'", "ConnectionError", "ConnectionError", "'real a'", "'real a'"] == seen
    assert (5, 2) == (rule.calls, rule.injected)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (KeyError("k"), "KeyError"),
        (PermissionError, "PermissionError"),
        (404, "HTTPStatusError"),
        (lambda: RuntimeError("made"), "RuntimeError"),
    ],
)
def test_fail_error_forms(error: Any, expected: str) -> None:
    """error= takes an exception, an exception class, an HTTP status or a factory."""
    with Faults() as faults:
        faults.fail(f"{__name__}:fetch", error=error)

        seen = outcomes(lambda: fetch("a"), 1)

    assert [expected] == seen


def test_random_is_reproducible_from_the_seed() -> None:
    """The same seed fails the same calls; another seed fails others; the rate is roughly honoured."""

    def pattern(seed: int) -> list[bool]:
        with Faults(seed=seed) as faults:
            faults.random(f"{__name__}:fetch", rate=0.3)
            return ["Error" in o for o in outcomes(lambda: fetch("a"), 200)]

    first, again, other = pattern(7), pattern(7), pattern(8)

    assert first == again
    assert first != other
    assert 30 <= sum(first) <= 90


def test_random_stream_does_not_depend_on_other_faults() -> None:
    """Adding faults elsewhere (random ones included) or wrapping a store does not change which calls fail here."""

    def pattern(extra: bool) -> list[bool]:
        with Faults(seed=3) as faults:
            if extra:
                faults.script(f"{__name__}:afetch", ["x"])
                faults.random(f"{__name__}:afetch", rate=0.5)
                faults.wrap_store(MemoryStore()).flaky(0.5)
            faults.random(f"{__name__}:fetch", rate=0.5)
            return ["Error" in o for o in outcomes(lambda: fetch("a"), 50)]

    assert pattern(False) == pattern(True)


def test_random_uses_the_default_rate() -> None:
    """Without rate=, random() uses the Faults' rate: 0 never fails, 1 always does."""
    with Faults(rate=0.0) as never:
        never.random(f"{__name__}:fetch")
        calm = outcomes(lambda: fetch("a"), 10)
    with Faults(rate=1.0) as always:
        always.random(f"{__name__}:fetch")
        stormy = outcomes(lambda: fetch("a"), 10)

    assert (["'real a'"] * 10, ["ConnectionError"] * 10) == (calm, stormy)


def test_latency_advances_the_fake_clock() -> None:
    """latency() moves the fake clock before the call runs; no real time passes."""
    clock = FakeClock(start=0)
    with installed(clock), Faults() as faults:
        faults.latency(f"{__name__}:fetch", "2s", times=2)

        results = [fetch("a") for _ in range(3)]

    assert (["real a"] * 3, 4.0, [2.0, 2.0]) == (results, clock.time(), clock.sleeps)
    assert ["latency", "latency"] == [f.kind for f in faults.log]


def test_latency_async_uses_asleep() -> None:
    """Async targets wait with the clock's asleep(), so concurrent slow calls overlap in fake time."""
    clock = FakeClock(start=0)

    async def main() -> list[str]:
        return await asyncio.gather(afetch("a"), afetch("b"))

    with installed(clock), Faults() as faults:
        faults.latency(f"{__name__}:afetch", 5)
        results = asyncio.run(main())

    assert (["async real a", "async real b"], 5.0) == (results, clock.time())


def test_latency_refuses_the_real_clock() -> None:
    """Latency never sleeps for real: without a fake clock installed, the call raises ConfigError."""
    with Faults() as faults:
        faults.latency(f"{__name__}:fetch", 1)

        with pytest.raises(ConfigError, match="reliable_clock"):
            fetch("a")


def test_latency_combines_with_a_script() -> None:
    """Latency rules add their delay; a later script still decides the outcome."""
    clock = FakeClock(start=0)
    with installed(clock), Faults() as faults:
        faults.latency(f"{__name__}:fetch", 3)
        faults.script(f"{__name__}:fetch", [TimeoutError()])

        seen = outcomes(lambda: fetch("a"), 2)

    assert (["TimeoutError", "'real a'"], 6.0) == (seen, clock.time())


def test_crash_is_a_base_exception_that_except_exception_misses() -> None:
    """crash(after=1) lets one call through, then raises SimulatedCrash, which `except Exception` does not catch."""
    cleaned_up = []

    def job() -> str:
        try:
            return fetch("a")
        except Exception:
            cleaned_up.append(True)
            raise

    with Faults() as faults:
        faults.crash(f"{__name__}:fetch", after=1)
        first = job()
        with pytest.raises(SimulatedCrash) as info:
            job()
        third = job()

    assert ("real a", "real a", []) == (first, third, cleaned_up)
    assert (f"{__name__}:fetch", 2, False) == (info.value.point, info.value.call, info.value.landed)
    assert not isinstance(info.value, Exception)


def test_crash_that_lands_runs_the_call_first() -> None:
    """crash(lands=True) runs the call (its effect happens), then crashes before the caller sees the result."""
    effects: list[str] = []

    def charge(amount: int) -> str:
        effects.append(f"charged {amount}")
        return "receipt"

    globals()["charge"] = charge
    try:
        with Faults() as faults:
            faults.crash(f"{__name__}:charge", lands=True)
            with pytest.raises(SimulatedCrash, match="after its effect landed"):
                globals()["charge"](10)
    finally:
        del globals()["charge"]

    assert ["charged 10"] == effects
    assert ["crash"] == [f.kind for f in faults.log]


def test_log_records_every_injected_fault() -> None:
    """faults.log lists point, kind, call and detail of each fault; injected() filters it."""
    with installed(FakeClock(start=100)), Faults() as faults:
        faults.script(f"{__name__}:fetch", [ValueError("bad"), "ok", "canned"])
        outcomes(lambda: fetch("a"), 3)

    assert [
        InjectedFault(f"{__name__}:fetch", "raise", 1, "ValueError: bad", 100.0),
        InjectedFault(f"{__name__}:fetch", "return", 3, "'canned'", 100.0),
    ] == faults.log
    assert 1 == len(faults.injected(f"{__name__}:fetch", kind="return"))


def test_two_rules_on_one_point_share_the_patch() -> None:
    """The first rule that raises or returns decides; later rules do not see that call."""
    with Faults() as faults:
        first = faults.fail(f"{__name__}:fetch", times=1)
        second = faults.script(f"{__name__}:fetch", ["canned"])

        seen = outcomes(lambda: fetch("a"), 2)

    assert ["ConnectionError", "'canned'"] == seen
    assert (2, 1) == (first.calls, second.calls)


def test_repr_mentions_counts() -> None:
    """Faults and Rule reprs say what was injected."""
    with Faults(seed=5) as faults:
        rule = faults.fail(f"{__name__}:fetch")
        outcomes(lambda: fetch("a"), 1)

        assert "seed=5" in repr(faults)
        assert "injected=1" in repr(faults)
        assert "1 injected in 1 calls" in repr(rule)


def test_stdlib_function_can_be_scripted() -> None:
    """Any importable callable works, e.g. json.dumps, and is restored afterwards."""
    with Faults() as faults:
        faults.script("json:dumps", [OSError("disk")])
        with pytest.raises(OSError, match="disk"):
            json.dumps({})

    assert "{}" == json.dumps({})


def test_return_wraps_values_a_script_would_read_as_faults() -> None:
    """Return(0) returns 0 (a bare int is an HTTP status), Return("ok") the string, Return(exc) the exception."""
    error = KeyError("as a value")
    with Faults() as faults:
        faults.script(f"{__name__}:fetch", [Return(0), Return("ok"), Return(error)])

        results = [fetch("a") for _ in range(4)]

    assert [0, "ok", error, "real a"] == results


def test_async_crash_that_lands() -> None:
    """An async target crashed with lands=True runs (its effect happens) and then raises SimulatedCrash."""
    with Faults() as faults:
        faults.crash(f"{__name__}:afetch", lands=True)

        with pytest.raises(SimulatedCrash, match="after its effect landed"):
            asyncio.run(afetch("a"))

    assert [True] == [f.kind == "crash" for f in faults.log]


def test_removing_rules() -> None:
    """Removing one of two rules keeps the patch; removing the last restores it; removing again changes nothing."""
    original = fetch
    with Faults() as faults:
        first = faults.fail(f"{__name__}:fetch", times=10)
        second = faults.script(f"{__name__}:fetch", ["canned"])
        store_rule = faults.fail("store.get")

        first.remove()
        after_first = fetch("a")
        second.remove()
        second.remove()
        store_rule.remove()
        restored = fetch is original

    assert ("canned", True) == (after_first, restored)


def test_function_not_found_under_its_name() -> None:
    """A function whose module attribute now names something else cannot be patched by object."""

    def replaced() -> None: ...

    replaced.__qualname__ = "fetch"  # claims to be this module's fetch, which it is not

    with Faults() as faults, pytest.raises(ConfigError, match="cannot find"):
        faults.fail(replaced)


def test_class_owner_tuple_names_the_class() -> None:
    """(SomeClass, 'method') patches the class and names the point module:Class.method."""
    with Faults() as faults:
        rule = faults.script((Client, "get"), ["canned"])

        result = Client().get("a")

    assert ("canned", f"{__name__}:Client.get") == (result, rule.point)
