"""Run a user's test module under pytester the way the fault-injection tests do: the plugin only, no real sleeps."""

from __future__ import annotations

import pytest


def run_user_tests(pytester: pytest.Pytester, module: str, source: str, backend: str) -> pytest.RunResult:
    """Write *source* as *module* and run it with ``--reliable-forbid-sleep`` on the *backend* store."""
    pytester.makepyfile(**{module: source})
    options = ["-p", "no:hypothesispytest", "-p", "no:benchmark", "-v", "--reliable-forbid-sleep"]
    return pytester.runpytest(*options, f"--reliable-store={backend}")
