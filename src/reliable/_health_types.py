"""The values `reliable.health()` returns: frozen, and convertible to JSON for ``reliable status --json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Failure", "OperationHealth", "RunInfo", "State"]

State = Literal["ok", "stale", "stuck", "failing", "degraded"]


@dataclass(frozen=True)
class Failure:
    """The last failed run of an operation.

    Attributes:
        time: When it ended, store time (seconds since the epoch).
        error: ``"ExceptionType: message"`` (truncated).
        error_type: The exception's qualified class name (OpenTelemetry's ``error.type``).
        kind: `reliable.classify`'s kind (``"transient"``, ``"quota_exhausted"``, ...), or None.
        duration: Seconds the run took.
        run_id: The run's id.

    .. versionadded:: 0.1.0
    """

    time: float
    error: str | None
    error_type: str | None
    kind: str | None
    duration: float | None
    run_id: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Failure:
        return cls(
            time=float(data.get("time") or 0.0),
            error=data.get("error"),
            error_type=data.get("error_type"),
            kind=data.get("kind"),
            duration=data.get("duration"),
            run_id=data.get("run_id"),
        )


@dataclass(frozen=True)
class RunInfo:
    """A run in progress: its id, when it started and last renewed (store time), and where it runs.

    .. versionadded:: 0.1.0
    """

    run_id: str
    started_at: float
    touched_at: float
    host: str
    pid: int


@dataclass(frozen=True)
class OperationHealth:
    """The health of one observed operation, judged from the store at `checked_at`.

    Attributes:
        name: The operation's name.
        state: The worst of `problems`, or ``"ok"``.
        problems: Every state that applies, worst first: ``"failing"``, ``"stuck"``,
            ``"stale"``, ``"degraded"``.
        reason: Why, in one sentence.
        checked_at: The store time of the judgement.
        last_start: When the last run started, or None.
        last_success: When the last successful run ended, or None.
        last_failure: The last failure, or None.
        last_outcome: ``"ok"``, ``"error"`` or ``"degraded"`` of the last finished run.
        last_duration: Seconds the last finished run took.
        consecutive_failures: Failed runs in a row, up to the last one.
        max_age: The operation's *max_age*, in seconds, or None.
        max_runtime: The operation's *max_runtime*, in seconds, or None.
        running: The runs in progress.
        open_alerts: Alert kinds sent and not yet followed by a recovery notice.

    .. versionadded:: 0.1.0
    """

    name: str
    state: State | str
    problems: tuple[str, ...]
    reason: str
    checked_at: float
    last_start: float | None = None
    last_success: float | None = None
    last_failure: Failure | None = None
    last_outcome: str | None = None
    last_duration: float | None = None
    consecutive_failures: int = 0
    max_age: float | None = None
    max_runtime: float | None = None
    running: tuple[RunInfo, ...] = ()
    open_alerts: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        """Whether `state` is ``"ok"``."""
        return self.state == "ok"

    @property
    def stale(self) -> bool:
        """Whether no success came within *max_age*."""
        return "stale" in self.problems

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-able values (``reliable status --json``)."""
        data = asdict(self)
        data["healthy"] = self.healthy
        return data
