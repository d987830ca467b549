"""Properties of the pure decision core of `reliable.retry` (`reliable._backoff`)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from reliable._backoff import Decision, Policy, backoff, decide

durations = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
rands = st.floats(min_value=0, max_value=1, exclude_max=True)
attempt_numbers = st.integers(min_value=1, max_value=10_000)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    initial = draw(st.floats(min_value=0, max_value=100, allow_nan=False))
    cap = draw(st.floats(min_value=initial, max_value=1000, allow_nan=False))
    return Policy(
        attempts=draw(st.none() | st.integers(min_value=1, max_value=50)),
        deadline=draw(st.none() | st.floats(min_value=0.001, max_value=1e5, allow_nan=False)),
        wait_initial=initial,
        wait_max=cap,
        wait_exp_base=draw(st.floats(min_value=1, max_value=10, allow_nan=False)),
        jitter=draw(st.sampled_from(["full", "equal", "none"])),
        max_server_wait=draw(st.none() | durations),
    )


def ceiling(policy: Policy, attempt: int) -> float:
    try:
        return min(policy.wait_max, policy.wait_initial * policy.wait_exp_base ** (attempt - 1))
    except OverflowError:
        return policy.wait_max


@given(policies(), attempt_numbers, rands)
def test_backoff_stays_within_its_jitter_interval(policy: Policy, attempt: int, rand: float) -> None:
    """Full jitter is in [0, ceiling], equal jitter in [ceiling/2, ceiling], none is the ceiling; all <= wait_max."""
    top = ceiling(policy, attempt)
    low = {"full": 0.0, "equal": top / 2, "none": top}[policy.jitter]

    wait = backoff(policy, attempt, rand)

    assert low <= wait <= top <= policy.wait_max


@given(policies(), st.integers(min_value=1, max_value=60), rands)
def test_unjittered_backoff_starts_at_wait_initial_and_never_shrinks(policy: Policy, attempt: int, rand: float) -> None:
    """Without jitter the n-th backoff is at least wait_initial and at least the one before."""
    plain = Policy(
        policy.attempts, policy.deadline, policy.wait_initial, policy.wait_max, policy.wait_exp_base, "none", None
    )

    first, previous, current = backoff(plain, 1, rand), backoff(plain, attempt, rand), backoff(plain, attempt + 1, rand)

    assert plain.wait_initial == first
    assert plain.wait_initial <= previous <= current


@given(policies(), attempt_numbers, durations, durations, rands)
def test_never_retries_before_the_server_allows(
    policy: Policy, attempt: int, elapsed: float, requested: float, rand: float
) -> None:
    """When the server asked for a wait, the core either waits exactly that long or gives up."""
    decision = decide(policy, attempt=attempt, elapsed=elapsed, retryable=True, why="", requested=requested, rand=rand)

    assert decision.give_up or requested == decision.wait


@given(policies(), attempt_numbers, durations, durations, rands)
def test_a_requested_wait_past_the_deadline_gives_up_at_once(
    policy: Policy, attempt: int, elapsed: float, requested: float, rand: float
) -> None:
    """A server-requested wait that does not fit in the remaining deadline gives up without sleeping."""
    decision = decide(policy, attempt=attempt, elapsed=elapsed, retryable=True, why="", requested=requested, rand=rand)

    if policy.deadline is not None and requested >= policy.deadline - elapsed:
        assert decision.give_up


@given(policies(), attempt_numbers, durations, st.none() | durations, rands)
def test_the_next_attempt_always_starts_before_the_deadline(
    policy: Policy, attempt: int, elapsed: float, requested: float | None, rand: float
) -> None:
    """Whatever the wait, the next attempt would start strictly before the deadline, within the attempts."""
    decision = decide(policy, attempt=attempt, elapsed=elapsed, retryable=True, why="", requested=requested, rand=rand)

    if decision.wait is not None:
        assert policy.deadline is None or elapsed + decision.wait < policy.deadline
        assert policy.attempts is None or attempt < policy.attempts
        assert policy.max_server_wait is None or requested is None or requested <= policy.max_server_wait


@given(policies(), attempt_numbers, durations, rands)
def test_wait_max_caps_backoff_but_not_a_server_request(
    policy: Policy, attempt: int, elapsed: float, rand: float
) -> None:
    """A server request above wait_max is honoured as is (if it fits); a computed backoff never exceeds wait_max."""
    requested = policy.wait_max + 1.0

    asked = decide(policy, attempt=attempt, elapsed=elapsed, retryable=True, why="", requested=requested, rand=rand)
    computed = decide(policy, attempt=attempt, elapsed=elapsed, retryable=True, why="", requested=None, rand=rand)

    assert asked.wait is None or requested == asked.wait
    assert computed.wait is None or computed.wait <= policy.wait_max


@given(policies(), attempt_numbers, durations, st.none() | durations, rands)
def test_not_retryable_gives_up_with_the_classifiers_reason(
    policy: Policy, attempt: int, elapsed: float, requested: float | None, rand: float
) -> None:
    """A failure the classifier refuses is never retried, and the reason is the classifier's."""
    decision = decide(
        policy, attempt=attempt, elapsed=elapsed, retryable=False, why="HTTP 404", requested=requested, rand=rand
    )

    assert Decision(None, "HTTP 404") == decision


def test_attempts_exhausted_gives_up() -> None:
    """After the last allowed attempt the core gives up, saying so."""
    policy = Policy(3, None, 1.0, 10.0, 2.0, "none", None)

    decision = decide(policy, attempt=3, elapsed=0.0, retryable=True, why="", requested=None, rand=0.5)

    assert Decision(None, "all 3 attempts failed") == decision


def test_backoff_that_overflows_is_capped() -> None:
    """A huge attempt number with a large base gives wait_max instead of an OverflowError."""
    policy = Policy(None, None, 1.0, 7.0, 10.0, "none", None)

    assert 7.0 == backoff(policy, 100_000, 0.5)


def test_server_wait_above_max_server_wait_gives_up() -> None:
    """max_server_wait bounds what the caller honours: a longer Retry-After gives up at once."""
    policy = Policy(5, 600.0, 1.0, 10.0, 2.0, "full", 30.0)

    decision = decide(policy, attempt=1, elapsed=0.0, retryable=True, why="", requested=45.0, rand=0.5)

    assert decision.give_up
    assert "max_server_wait=30s" in decision.reason


def test_full_jitter_example_values() -> None:
    """The documented formula: full jitter after attempt 3 with initial 0.5 and base 2 is rand * 2.0."""
    policy = Policy(5, 60.0, 0.5, 30.0, 2.0, "full", None)

    assert math.isclose(0.5, backoff(policy, 3, 0.25))


@given(policies(), attempt_numbers, rands)
def test_decide_waits_exactly_the_backoff(policy: Policy, attempt: int, rand: float) -> None:
    """With no attempt limit, deadline or server request in the way, decide waits `backoff` (it inlines it)."""
    unbounded = Policy(
        None, None, policy.wait_initial, policy.wait_max, policy.wait_exp_base, policy.jitter, policy.max_server_wait
    )

    decision = decide(unbounded, attempt=attempt, elapsed=0.0, retryable=True, why="", requested=None, rand=rand)

    assert Decision(backoff(unbounded, attempt, rand), "backoff") == decision
