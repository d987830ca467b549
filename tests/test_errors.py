"""The error tree: every error is a ReliableError, ConfigError is also a ValueError, details are attributes."""

from __future__ import annotations

import pytest

import reliable


@pytest.mark.parametrize(
    ("error", "parents"),
    [
        (reliable.ConfigError, (reliable.ReliableError, ValueError)),
        (reliable.InProgressError, (reliable.IdempotencyError,)),
        (reliable.IdempotencyConflictError, (reliable.IdempotencyError,)),
        (reliable.AlreadyRunningError, (reliable.LockError,)),
        (reliable.LeaseLostError, (reliable.LockError,)),
        (reliable.CircuitOpenError, (reliable.ReliableError,)),
        (reliable.StoreUnavailableError, (reliable.StoreError,)),
    ],
)
def test_tree(error: type[Exception], parents: tuple[type[Exception], ...]) -> None:
    """Each error sits where the documented tree puts it, under ReliableError."""
    assert all(issubclass(error, parent) for parent in (*parents, reliable.ReliableError))


def test_details_become_attributes() -> None:
    """Keyword details given to an error are kept as attributes and in `details`."""
    err = reliable.AlreadyRunningError("held", name="job", owner="pid 1")

    assert ("held", "job", "pid 1") == (str(err), err.name, err.owner)  # type: ignore[attr-defined]
    assert {"name": "job", "owner": "pid 1"} == err.details
