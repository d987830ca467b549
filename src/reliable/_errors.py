"""The exceptions `reliable` raises.

Every error the library raises on its own account derives from `ReliableError`::

    ReliableError
    ├── ConfigError(ReliableError, ValueError)
    ├── IdempotencyError ── InProgressError, IdempotencyConflictError
    ├── LockError ── AlreadyRunningError, LeaseLostError
    ├── CircuitOpenError
    └── StoreError ── StoreUnavailableError        (always ``raise ... from exc``)

A retry that gives up re-raises the caller's own exception, never one of these.
Each error keeps the values named in its message as attributes.
"""

from __future__ import annotations

from typing import Any


class ReliableError(Exception):
    """Base class of every error raised by `reliable` itself."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        for name, value in details.items():
            setattr(self, name, value)


class ConfigError(ReliableError, ValueError):
    """A parameter, URL or environment variable has a value `reliable` cannot use.

    Raised before any side effect; the message names the parameter and the fix.
    """


class IdempotencyError(ReliableError):
    """Base class of the errors of `reliable.idempotent`."""


class InProgressError(IdempotencyError):
    """Another caller holds the key and has not finished (``on_in_progress="raise"``)."""


class IdempotencyConflictError(IdempotencyError):
    """The key was used before with different arguments."""


class LockError(ReliableError):
    """Base class of the errors of `reliable.single_instance` and leases."""


class AlreadyRunningError(LockError):
    """The lock is held by another holder (``on_conflict="raise"``, or a wait timed out)."""


class LeaseLostError(LockError):
    """A lease or claim this caller held now belongs to someone else, or expired."""


class CircuitOpenError(ReliableError):
    """A circuit breaker is open and refused the call."""


class StoreError(ReliableError):
    """A state store failed."""


class StoreUnavailableError(StoreError):
    """A state store cannot be reached; the message names its address."""
