"""The ``reliable`` pytest plugin: fake time, a fresh store, fault injection and captured telemetry per test.

Registered through the ``pytest11`` entry point, so installing `reliable` is enough.

Fixtures: ``reliable_clock`` (a `FakeClock` installed for the test), ``reliable_store`` (a fresh
store, configured as the default, wrapped in a `FaultyStore`), ``reliable_store_factory`` (more
stores: ``reliable_store_factory("sqlite")``), ``reliable_faults`` (a `Faults`, undone at
teardown) and ``reliable_telemetry`` (a `CapturedTelemetry`).

Settings, each from the marker ``@pytest.mark.reliable_faults(...)``, else the command line,
else the ini file (``[tool.pytest.ini_options]``): the fault *seed* (``--reliable-seed``,
``reliable_seed``), the default fault *rate* (``--reliable-fault-rate``, ``reliable_fault_rate``),
the store *backend* (``--reliable-store``, ``reliable_store``), and the real-sleep guard
(``--reliable-forbid-sleep``, ``reliable_forbid_sleep``; ``--reliable-max-sleep``,
``reliable_max_sleep``). When a test that used ``reliable_faults`` fails, its report shows the
seed and the faults injected, so the run can be repeated exactly.

This module imports nothing heavy until a fixture is used.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._settings import MARKER_HELP, SETTINGS, Settings, item_settings, session_settings
from ._sleep_guard import SleepGuard

if TYPE_CHECKING:
    from ._capture import CapturedTelemetry
    from ._fake_clock import FakeClock
    from ._faults import Faults
    from ._store_faults import FaultyStore

__all__ = [
    "reliable_clock",
    "reliable_faults",
    "reliable_store",
    "reliable_store_factory",
    "reliable_telemetry",
]

_FAULTS = pytest.StashKey["Faults"]()
_GUARD = pytest.StashKey[SleepGuard]()
_MAX_LOGGED = 20


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``reliable`` option group and its ini keys."""
    group = parser.getgroup("reliable", "reliable: fault injection, fake time and the real-sleep guard")
    group.addoption(
        "--reliable-seed",
        dest="reliable_seed",
        metavar="SEED",
        help="Seed of every random fault (an integer, or 'random' for a fresh one printed in the header). Default: 0.",
    )
    group.addoption(
        "--reliable-fault-rate",
        dest="reliable_fault_rate",
        metavar="RATE",
        help="Default probability (0..1) of Faults.random() and FaultyStore.flaky(). Default: 0.1.",
    )
    group.addoption(
        "--reliable-store",
        dest="reliable_store",
        metavar="BACKEND",
        help="Backend of the reliable_store fixture: memory or sqlite (on the test's tmp_path). Default: memory.",
    )
    group.addoption(
        "--reliable-forbid-sleep",
        dest="reliable_forbid_sleep",
        action="store_true",
        default=None,
        help="Fail any test that sleeps for real (time.sleep, asyncio.sleep) longer than --reliable-max-sleep.",
    )
    group.addoption(
        "--reliable-max-sleep",
        dest="reliable_max_sleep",
        metavar="SECONDS",
        help="Longest real sleep allowed with --reliable-forbid-sleep. Default: 0.05.",
    )
    parser.addini("reliable_seed", "Seed of every random fault (integer or 'random').", default=None)
    parser.addini("reliable_fault_rate", "Default probability (0..1) of random and flaky faults.", default=None)
    parser.addini("reliable_store", "Backend of the reliable_store fixture: memory or sqlite.", default=None)
    parser.addini("reliable_forbid_sleep", "Fail tests that sleep for real too long.", type="bool", default=None)
    parser.addini(
        "reliable_max_sleep", "Longest real sleep allowed when sleeping is forbidden (seconds).", default=None
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and validate the command line and ini settings."""
    config.addinivalue_line("markers", MARKER_HELP)
    try:
        config.stash[SETTINGS] = session_settings(config)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: hand the controller's seed to each worker, so ``--reliable-seed=random`` means one seed."""
    node.workerinput["reliable_seed"] = node.config.stash[SETTINGS].seed


def pytest_report_header(config: pytest.Config) -> str:
    """Show the seed (so a run can be repeated) and the other settings."""
    return f"reliable: {config.stash[SETTINGS].describe()}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, Any, None]:
    """Check the marker before the test runs, and guard against real sleeps if asked."""
    guard = None
    try:
        settings = item_settings(item)
    except ValueError:
        settings = None  # reported by the fixture / setup hook below, as an error of this test
    if settings is not None and settings.forbid_sleep:
        guard = item.stash[_GUARD] = SleepGuard(settings.max_sleep)
        guard.install()
    try:
        yield
    finally:
        if guard is not None:
            guard.uninstall()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A bad marker value fails the test at setup, naming the marker and the test."""
    if item.get_closest_marker("reliable_faults") is not None:
        _settings_or_fail(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Fail a test that slept for real (even if the error was swallowed); print the seed of a failed test."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    guard = item.stash.get(_GUARD, None)
    if guard is not None and report.when == "call" and guard.violations and report.passed:
        report.outcome = "failed"
        report.longrepr = "\n".join(guard.violations)
    faults = item.stash.get(_FAULTS, None)
    if faults is not None and report.failed:
        report.sections.append(("reliable faults", _describe_faults(item, faults)))


def _describe_faults(item: pytest.Item, faults: Faults) -> str:
    lines = [
        f"seed: {faults.seed} (repeat with --reliable-seed={faults.seed} "
        f"or @pytest.mark.reliable_faults(seed={faults.seed}))",
        f"injected: {len(faults.log)}",
    ]
    for fault in faults.log[:_MAX_LOGGED]:
        lines.append(f"  {fault.point} call {fault.call}: {fault.kind} {fault.detail}")
    if len(faults.log) > _MAX_LOGGED:
        lines.append(f"  ... and {len(faults.log) - _MAX_LOGGED} more (faults.log has them all)")
    return "\n".join(lines)


def _settings_or_fail(item: pytest.Item) -> Settings:
    try:
        return item_settings(item)
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def reliable_clock() -> Iterator[FakeClock]:
    """A `FakeClock` installed as the library clock for the test, then the previous clock restored.

    Its wall time starts at the real current time; sleeping on it takes no real time.
    """
    from .._internal._clock import installed
    from ._fake_clock import FakeClock

    clock = FakeClock()
    with installed(clock):
        yield clock


@pytest.fixture
def reliable_faults(request: pytest.FixtureRequest) -> Iterator[Faults]:
    """A `Faults` seeded from the marker, command line or ini file; every fault is undone at teardown."""
    from ._faults import Faults

    settings = _settings_or_fail(request.node)
    faults = Faults(seed=settings.seed, rate=settings.rate)
    request.node.stash[_FAULTS] = faults
    with faults:
        yield faults


@pytest.fixture
def reliable_store_factory(
    request: pytest.FixtureRequest, reliable_faults: Faults
) -> Iterator[Callable[..., FaultyStore]]:
    """Make more stores for the test: ``reliable_store_factory("sqlite", default=True)``.

    The argument is ``"memory"``, ``"sqlite"`` (a fresh file under the test's ``tmp_path``) or a
    store URL. Each store is wrapped in a `FaultyStore` of the test's ``reliable_faults`` and closed
    at teardown; with ``default=True`` it is also the configured default store for the test.
    """
    from .._config import configured

    with ExitStack() as stack:
        made = 0

        def make(backend: str = "memory", *, default: bool = False) -> FaultyStore:
            nonlocal made
            made += 1
            inner = _open(backend, request, made)
            stack.callback(inner.close)
            store = reliable_faults.wrap_store(inner, name=f"{backend}{made}" if made > 1 else backend)
            if default:
                stack.enter_context(configured(store=store))
            return store

        yield make


@pytest.fixture
def reliable_store(request: pytest.FixtureRequest, reliable_store_factory: Callable[..., FaultyStore]) -> FaultyStore:
    """A fresh store (memory unless the marker, command line or ini says sqlite), the default for the test.

    It is a `FaultyStore` of the test's ``reliable_faults``: ``reliable_store.unavailable()``,
    ``.flaky(rate)``, ``.slow(seconds)`` and ``.healthy()`` switch its behaviour at any time;
    ``@pytest.mark.reliable_faults(store="unavailable")`` starts the test in that mode.
    """
    settings = _settings_or_fail(request.node)
    store = reliable_store_factory(settings.backend, default=True)
    _forget_alert_throttles()
    if settings.store_mode == "unavailable":
        store.unavailable()
    elif settings.store_mode == "flaky":
        store.flaky()
    elif settings.store_mode == "slow":
        store.slow(settings.latency)
    return store


@pytest.fixture
def reliable_telemetry() -> Iterator[CapturedTelemetry]:
    """The spans, metrics, log records, alerts and events `reliable` produced during the test."""
    from ._capture import capture_telemetry

    with capture_telemetry() as captured:
        yield captured


def _forget_alert_throttles() -> None:
    """Drop the alert throttle marks this process remembers: they belong to earlier tests' stores.

    Without this, a test that expects an alert would find it throttled because an earlier test
    with a store of its own sent one for the same operation within the throttle window.
    """
    from .. import _alerting

    with contextlib.suppress(AttributeError):  # another version of reliable._alerting: nothing to forget
        _alerting._dispatcher.until.clear()


def _open(backend: str, request: pytest.FixtureRequest, index: int) -> Any:
    if backend == "memory":
        from ..stores.memory import MemoryStore

        return MemoryStore()
    if backend == "sqlite":
        from ..stores.sqlite import SQLiteStore

        tmp_path: Path = request.getfixturevalue("tmp_path")
        return SQLiteStore(tmp_path / f"reliable-{index}.db")
    from ..stores import open as open_store

    return open_store(backend)
