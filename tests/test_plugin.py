"""The pytest plugin as a user's suite sees it: fixtures, the marker, options and ini keys, reports, the sleep guard."""

from __future__ import annotations

import re

import pytest


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process without the slow-starting plugins this suite does not need inside."""
    return pytester.runpytest("-p", "no:hypothesispytest", "-p", "no:benchmark", *args)


def test_marker_is_registered_with_help(pytester: pytest.Pytester) -> None:
    """`pytest --markers` lists reliable_faults with its arguments."""
    result = run(pytester, "--markers")

    result.stdout.fnmatch_lines(["@pytest.mark.reliable_faults(seed=None, rate=None, backend=None, store=None*"])


def test_options_are_in_help(pytester: pytest.Pytester) -> None:
    """`pytest --help` shows the reliable option group and ini keys."""
    result = run(pytester, "--help")

    result.stdout.fnmatch_lines(
        [
            "reliable: fault injection, fake time and the real-sleep guard:",
            "*--reliable-seed=SEED*",
            "*--reliable-fault-rate=RATE*",
            "*--reliable-store=BACKEND*",
            "*--reliable-forbid-sleep*",
            "*--reliable-max-sleep=SECONDS*",
        ]
    )
    result.stdout.fnmatch_lines(["*reliable_seed (string)*", "*reliable_forbid_sleep (bool)*"])


def test_header_shows_the_settings(pytester: pytest.Pytester) -> None:
    """The report header shows seed, fault rate, store backend and the sleep guard."""
    pytester.makepyfile("def test_nothing(): pass")

    result = run(pytester, "--reliable-fault-rate=0.25")

    result.stdout.fnmatch_lines(["reliable: seed=0, fault rate=0.25, store=memory, forbid sleep=off"])


def test_fixtures_install_and_restore(pytester: pytest.Pytester) -> None:
    """reliable_clock is the library clock and reliable_store the default store during the test; both undone after."""
    pytester.makepyfile(
        """
        from reliable._config import default_store
        from reliable._internal import _clock
        from reliable.testing import FakeClock, FaultyStore

        seen = {}

        def test_inside(reliable_clock, reliable_store):
            assert isinstance(reliable_clock, FakeClock)
            assert _clock.current() is reliable_clock
            assert isinstance(reliable_store, FaultyStore)
            assert default_store() is reliable_store
            reliable_store.set("k", 1)
            seen["store"] = reliable_store

        def test_after(reliable_store):
            assert not isinstance(_clock.current(), FakeClock)
            assert reliable_store is not seen["store"]
            assert reliable_store.get("k") is None
        """
    )

    result = run(pytester, "-p", "no:randomly")

    result.assert_outcomes(passed=2)


def test_faults_are_undone_at_teardown(pytester: pytest.Pytester) -> None:
    """A patch made through reliable_faults lasts for its test only."""
    pytester.makepyfile(
        """
        import json

        def test_patch(reliable_faults):
            reliable_faults.script("json:dumps", ["patched"])
            assert json.dumps(1) == "patched"

        def test_restored():
            assert json.dumps(1) == "1"
        """
    )

    result = run(pytester)

    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("ini", "args", "marker", "expected"),
    [
        (None, [], "", "0 0.1"),
        ("reliable_seed = 1\nreliable_fault_rate = 0.2", [], "", "1 0.2"),
        (
            "reliable_seed = 1\nreliable_fault_rate = 0.2",
            ["--reliable-seed=2", "--reliable-fault-rate=0.3"],
            "",
            "2 0.3",
        ),
        (
            "reliable_seed = 1\nreliable_fault_rate = 0.2",
            ["--reliable-seed=2", "--reliable-fault-rate=0.3"],
            "@pytest.mark.reliable_faults(seed=3, rate=0.4)",
            "3 0.4",
        ),
        (None, ["--reliable-seed=2"], "@pytest.mark.reliable_faults(rate=0.5)", "2 0.5"),
    ],
)
def test_marker_wins_over_command_line_over_ini(
    pytester: pytest.Pytester, ini: str | None, args: list[str], marker: str, expected: str
) -> None:
    """Each setting comes from the marker, else the command line, else the ini file, else the default."""
    if ini is not None:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(
        f"""
        import pytest

        {marker}
        def test_settings(reliable_faults):
            print("SETTINGS", reliable_faults.seed, reliable_faults.rate)
        """
    )

    result = run(pytester, "-s", *args)

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*SETTINGS {expected}*"])


def test_bad_marker_value_names_the_marker_and_test(pytester: pytest.Pytester) -> None:
    """A bad marker value errors the test with a message naming the value, the marker and the test."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.reliable_faults(rate=1.5)
        def test_x():
            pass

        @pytest.mark.reliable_faults(seed="abc")
        def test_y(reliable_faults):
            pass

        @pytest.mark.reliable_faults(backend="mongo")
        def test_z(reliable_store):
            pass

        @pytest.mark.reliable_faults(7)
        def test_positional():
            pass

        @pytest.mark.reliable_faults(colour="red")
        def test_unknown():
            pass

        @pytest.mark.reliable_faults(forbid_sleep="yes", max_sleep=-1)
        def test_flag():
            pass

        @pytest.mark.reliable_faults(seed=True)
        def test_bool_seed():
            pass

        @pytest.mark.reliable_faults(rate=True)
        def test_bool_rate():
            pass

        @pytest.mark.reliable_faults(seed=None, rate=None)
        def test_nones_keep_the_defaults(reliable_faults):
            assert (reliable_faults.seed, reliable_faults.rate) == (0, 0.1)
        """
    )

    result = run(pytester)

    result.assert_outcomes(errors=8, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*Invalid fault rate 1.5 from marker on test_x; expected 0..1*",
            "*Invalid seed abc from marker on test_y; expected an integer or 'random'*",
            "*Invalid store backend mongo from marker on test_z; expected one of memory, sqlite*",
            "*Invalid positional arguments (7,) from marker on test_positional; the marker takes keywords only*",
            "*Invalid argument colour='red' from marker on test_unknown; expected some of seed, rate, *",
            "*Invalid forbid_sleep yes from marker on test_flag; expected True or False*",
            "*Invalid seed True from marker on test_bool_seed; expected an integer or 'random'*",
            "*Invalid fault rate True from marker on test_bool_rate; expected 0..1*",
        ]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reliable-fault-rate=2"], "Invalid fault rate 2 from --reliable-fault-rate; expected 0..1"),
        (["--reliable-seed=x"], "Invalid seed x from --reliable-seed; expected an integer or 'random'"),
        (
            ["--reliable-store=mongo"],
            "Invalid store backend mongo from --reliable-store; expected one of memory, sqlite",
        ),
        (["--reliable-max-sleep=soon"], "Invalid max sleep soon from --reliable-max-sleep; expected seconds >= 0"),
    ],
)
def test_bad_command_line_value_is_a_usage_error(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    """A bad option value stops the run with a usage error naming the option."""
    pytester.makepyfile("def test_nothing(): pass")

    result = run(pytester, *args)

    assert pytest.ExitCode.USAGE_ERROR == result.ret
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_bad_ini_value_names_the_ini_file(pytester: pytest.Pytester) -> None:
    """A bad ini value stops the run naming the ini key and file."""
    pytester.makeini("[pytest]\nreliable_fault_rate = lots\n")
    pytester.makepyfile("def test_nothing(): pass")

    result = run(pytester)

    assert pytest.ExitCode.USAGE_ERROR == result.ret
    result.stderr.fnmatch_lines(
        ["*Invalid fault rate lots from ini option reliable_fault_rate in tox.ini; expected 0..1*"]
    )


def test_failure_report_shows_seed_and_injected_faults(pytester: pytest.Pytester) -> None:
    """A failed test that used reliable_faults reports its seed (how to repeat it) and every fault injected."""
    pytester.makepyfile(
        """
        import json
        import pytest

        @pytest.mark.reliable_faults(seed=42)
        def test_fails(reliable_faults):
            reliable_faults.fail("json:dumps", times=1)
            with pytest.raises(ConnectionError):
                json.dumps(1)
            assert False, "the job did not survive"

        def test_passes(reliable_faults):
            pass
        """
    )

    result = run(pytester)

    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*- reliable faults -*",
            "seed: 42 (repeat with --reliable-seed=42 or @pytest.mark.reliable_faults(seed=42))",
            "injected: 1",
            "  json:dumps call 1: raise ConnectionError: connection failed at 'json:dumps'*",
        ]
    )
    assert 1 == result.stdout.str().count("- reliable faults -")


def test_failure_report_lists_at_most_twenty_faults(pytester: pytest.Pytester) -> None:
    """A long fault log is cut after 20 entries with a count of the rest."""
    pytester.makepyfile(
        """
        import json

        def test_fails(reliable_faults):
            reliable_faults.script("json:dumps", ["x"] * 25)
            for _ in range(25):
                json.dumps(1)
            assert False
        """
    )

    result = run(pytester)

    result.stdout.fnmatch_lines(["injected: 25", "  ... and 5 more (faults.log has them all)"])


def test_random_seed_is_printed_and_reproduces_the_run(pytester: pytest.Pytester) -> None:
    """--reliable-seed=random picks a seed, shows it in the header, and passing it back repeats the same faults."""
    pytester.makepyfile(
        """
        import json

        def test_random(reliable_faults):
            reliable_faults.random("json:dumps", rate=0.5)
            pattern = []
            for _ in range(32):
                try:
                    json.dumps(1)
                    pattern.append("-")
                except ConnectionError:
                    pattern.append("X")
            print("PATTERN", "".join(pattern))
        """
    )

    first = run(pytester, "-s", "--reliable-seed=random")
    seed = re.search(r"repeat with --reliable-seed=(\d+)", first.stdout.str())
    assert seed is not None
    again = run(pytester, "-s", f"--reliable-seed={seed.group(1)}")

    def pattern(result: pytest.RunResult) -> str:
        found = re.search(r"PATTERN ([-X]+)", result.stdout.str())
        assert found is not None
        return found.group(1)

    assert pattern(first) == pattern(again)


def test_store_backend_from_command_line_and_marker(pytester: pytest.Pytester) -> None:
    """--reliable-store=sqlite (or the marker's backend=) makes reliable_store a SQLite store under tmp_path."""
    pytester.makepyfile(
        """
        import pytest

        def test_cli(reliable_store, tmp_path):
            assert type(reliable_store.inner).__name__ == "SQLiteStore"
            assert list(tmp_path.glob("reliable-*.db"))

        @pytest.mark.reliable_faults(backend="memory")
        def test_marker(reliable_store):
            assert type(reliable_store.inner).__name__ == "MemoryStore"
        """
    )

    result = run(pytester, "--reliable-store=sqlite")

    result.assert_outcomes(passed=2)


def test_store_mode_from_marker(pytester: pytest.Pytester) -> None:
    """The marker's store= starts reliable_store unavailable, flaky (at rate=) or slow (by latency=)."""
    pytester.makepyfile(
        """
        import pytest
        from reliable import StoreUnavailableError

        @pytest.mark.reliable_faults(store="unavailable")
        def test_unavailable(reliable_store):
            with pytest.raises(StoreUnavailableError):
                reliable_store.get("k")
            reliable_store.healthy()
            assert reliable_store.get("k") is None

        @pytest.mark.reliable_faults(store="flaky", rate=1.0)
        def test_flaky(reliable_store):
            with pytest.raises(StoreUnavailableError):
                reliable_store.get("k")

        @pytest.mark.reliable_faults(store="slow", latency=2.5)
        def test_slow(reliable_clock, reliable_store):
            reliable_store.get("k")
            assert reliable_clock.advanced == 2.5

        @pytest.mark.reliable_faults(store="healthy")
        def test_healthy(reliable_store):
            assert reliable_store.mode == "healthy"
        """
    )

    result = run(pytester)

    result.assert_outcomes(passed=4)


def test_store_factory_makes_more_stores(pytester: pytest.Pytester) -> None:
    """reliable_store_factory makes memory, SQLite and URL stores wrapped by the test faults, optionally the default."""
    pytester.makepyfile(
        """
        from reliable import StoreUnavailableError
        from reliable._config import default_store

        def test_factory(reliable_store_factory, reliable_faults):
            memory = reliable_store_factory()
            sqlite = reliable_store_factory("sqlite", default=True)
            other = reliable_store_factory("memory://")
            assert default_store() is sqlite
            assert [type(s.inner).__name__ for s in (memory, sqlite, other)] == [
                "MemoryStore", "SQLiteStore", "MemoryStore"
            ]
            reliable_faults.fail("store.get", times=3)
            for store in (memory, sqlite, other):
                try:
                    store.get("k")
                except StoreUnavailableError:
                    pass
                else:
                    raise AssertionError("store.get did not fail")
        """
    )

    result = run(pytester)

    result.assert_outcomes(passed=1)


def test_telemetry_fixture_captures_the_test(pytester: pytest.Pytester) -> None:
    """reliable_telemetry holds the events of its test only."""
    pytester.makepyfile(
        """
        from reliable._internal._telemetry import emit

        def test_first(reliable_telemetry):
            emit("retry", "attempt", "one")
            assert [e.message for e in reliable_telemetry.events("retry")] == ["one"]

        def test_second(reliable_telemetry):
            assert reliable_telemetry.events() == []
        """
    )

    result = run(pytester)

    result.assert_outcomes(passed=2)


SLEEPERS = """
    import asyncio
    import threading
    import time
    import pytest

    def test_sleeps():
        time.sleep(0.02)

    def test_async_sleeps():
        asyncio.run(asyncio.sleep(0.02))

    def test_short_sleep_is_fine():
        time.sleep(0.001)

    def test_sleep_in_thread():
        thread = threading.Thread(target=time.sleep, args=(0.02,))
        thread.start()
        thread.join()

    def test_swallowed():
        try:
            time.sleep(0.02)
        except BaseException:
            pass

    @pytest.mark.reliable_faults(forbid_sleep=False)
    def test_opted_out():
        time.sleep(0.02)

    @pytest.mark.reliable_faults(max_sleep=0.03)
    def test_longer_allowed():
        time.sleep(0.02)
"""


def test_forbid_sleep_fails_real_sleeps(pytester: pytest.Pytester) -> None:
    """--reliable-forbid-sleep fails real sleeps over the limit, in threads and when swallowed; the marker opts out."""
    pytester.makepyfile(SLEEPERS)

    result = run(
        pytester,
        "--reliable-forbid-sleep",
        "--reliable-max-sleep=0.01",
        "-W",
        "ignore::pytest.PytestUnhandledThreadExceptionWarning",
    )

    result.assert_outcomes(failed=4, passed=3)
    result.stdout.fnmatch_lines(
        [
            "*time.sleep(0.02) slept for real longer than 0.01s (reliable forbid-sleep guard); install a FakeClock*",
            "*asyncio.sleep(0.02) slept for real longer than 0.01s*",
        ]
    )
    outcomes = {line.split(" ")[1].split("::")[1] for line in result.stdout.lines if line.startswith("FAILED ")}
    assert {"test_sleeps", "test_async_sleeps", "test_sleep_in_thread", "test_swallowed"} == outcomes


def test_forbid_sleep_from_ini(pytester: pytest.Pytester) -> None:
    """The ini keys reliable_forbid_sleep and reliable_max_sleep turn the guard on."""
    pytester.makeini("[pytest]\nreliable_forbid_sleep = true\nreliable_max_sleep = 0.01\n")
    pytester.makepyfile(SLEEPERS)

    result = run(pytester, "-W", "ignore::pytest.PytestUnhandledThreadExceptionWarning")

    result.assert_outcomes(failed=4, passed=3)
    result.stdout.fnmatch_lines(["reliable: *forbid sleep=on (> 0.01s fails)"])


def test_sleeping_is_allowed_by_default(pytester: pytest.Pytester) -> None:
    """Without the option the guard is off (it is opt-in)."""
    pytester.makepyfile(SLEEPERS)

    result = run(pytester)

    result.assert_outcomes(passed=7)


def test_guard_is_removed_after_the_test(pytester: pytest.Pytester) -> None:
    """After a guarded test, time.sleep is the original function again."""
    pytester.makepyfile(
        """
        import time
        ORIGINAL = time.sleep

        def test_guarded():
            assert time.sleep is not ORIGINAL

        def test_later():
            assert time.sleep is not ORIGINAL
        """
    )
    before = __import__("time").sleep

    result = run(pytester, "--reliable-forbid-sleep")

    result.assert_outcomes(passed=2)
    assert before is __import__("time").sleep


def test_xdist_workers_use_the_controllers_seed(pytester: pytest.Pytester) -> None:
    """Under pytest-xdist the controller hands its seed to each worker, so a random seed is one seed for the run."""
    from types import SimpleNamespace

    from reliable.testing import pytest_plugin
    from reliable.testing._settings import SETTINGS, Settings

    node = SimpleNamespace(workerinput={}, config=SimpleNamespace(stash={SETTINGS: Settings(seed=4242)}))
    pytest_plugin.pytest_configure_node(node)
    pytester.makeconftest(
        f"""
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_configure(config):
            config.workerinput = {node.workerinput!r}
        """
    )
    pytester.makepyfile("def test_seed(reliable_faults):\n    print('SEED', reliable_faults.seed)")

    result = run(pytester, "-s", "--reliable-seed=random")

    result.stdout.fnmatch_lines(["reliable: seed=4242 (random; repeat with --reliable-seed=4242)*", "*SEED 4242*"])
