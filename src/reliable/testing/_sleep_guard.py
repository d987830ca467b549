"""The opt-in real-sleep guard of the pytest plugin (``--reliable-forbid-sleep``)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

__all__ = ["SleepGuard"]


class SleepGuard:
    """While installed, `time.sleep` and `asyncio.sleep` longer than *max_sleep* fail the test.

    The sleeper gets ``pytest.fail`` (a `BaseException`, so ``except Exception`` cannot hide it),
    and the violation is kept in `violations`, so the plugin fails the test even when the
    sleep happened in another thread or the failure was swallowed. The library's
    ``SystemClock`` sleeps through these two functions, so it is covered too. Code that
    imported the function itself (``from time import sleep``) before the test is not.
    """

    def __init__(self, max_sleep: float) -> None:
        self.max_sleep = max_sleep
        self.violations: list[str] = []
        self._patch = pytest.MonkeyPatch()
        self._lock = threading.Lock()

    def _check(self, seconds: float, where: str) -> None:
        if seconds > self.max_sleep:
            msg = (
                f"{where}({seconds}) slept for real longer than {self.max_sleep}s (reliable forbid-sleep guard); "
                "install a FakeClock (the reliable_clock fixture) so waits take no real time"
            )
            with self._lock:
                self.violations.append(msg)
            pytest.fail(msg, pytrace=False)

    def install(self) -> None:
        """Replace the two sleeps; `uninstall` puts them back."""
        real_sleep, real_asleep = time.sleep, asyncio.sleep

        def sleep(seconds: float) -> None:
            self._check(seconds, "time.sleep")
            real_sleep(seconds)

        async def asleep(delay: float, result: object = None) -> object:
            self._check(delay, "asyncio.sleep")
            return await real_asleep(delay, result)

        self._patch.setattr(time, "sleep", sleep)
        self._patch.setattr(asyncio, "sleep", asleep)

    def uninstall(self) -> None:
        self._patch.undo()
