"""Test helpers: the fake clock, the fault injector and the store conformance suite.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from .._internal._clock import installed
from ._actions import InjectedFault, Return, SimulatedCrash
from ._capture import CapturedAlert, CapturedTelemetry, MetricPoint, capture_telemetry
from ._contract import check_store
from ._fake_clock import FakeClock
from ._faults import Faults, Rule
from ._http_errors import HTTPStatusError, http_error
from ._sdk_errors import APIConnectionError, APIError, APIStatusError, APITimeoutError, api_connection_error, api_error
from ._store_faults import FaultyStore

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "CapturedAlert",
    "CapturedTelemetry",
    "FakeClock",
    "FaultyStore",
    "Faults",
    "HTTPStatusError",
    "InjectedFault",
    "MetricPoint",
    "Return",
    "Rule",
    "SimulatedCrash",
    "api_connection_error",
    "api_error",
    "capture_telemetry",
    "check_store",
    "http_error",
    "installed",
]
