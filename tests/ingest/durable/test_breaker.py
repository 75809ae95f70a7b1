"""Circuit breaker transitions with a fake clock."""

from __future__ import annotations

from ingest.durable.breaker import CircuitBreaker
from tests.ingest.durable.helpers import FakeClock


def state(breaker: CircuitBreaker) -> str:
    """The state, read fresh (keeps type checkers from narrowing across calls)."""
    return breaker.state


def _breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failures=5, window_s=60.0, open_s=30.0, clock=clock)


def test_opens_after_five_failures_within_the_window() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(4):
        breaker.record_failure()
        clock.now += 10
    assert state(breaker) == "closed" and breaker.allow()
    breaker.record_failure()
    assert state(breaker) == "open"
    assert not breaker.allow()


def test_failures_older_than_the_window_do_not_count() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(5):
        breaker.record_failure()
        clock.now += 16  # five failures spread over 64 s: at most four within any 60 s
    assert state(breaker) == "closed"


def test_after_the_pause_exactly_one_probe_is_allowed() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.2
    assert state(breaker) == "half_open"
    assert breaker.allow()
    assert not breaker.allow()


def test_successful_probe_closes() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert state(breaker) == "closed"
    assert breaker.allow() and breaker.allow()


def test_failed_probe_reopens_for_another_pause() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now += 30
    assert breaker.allow()
    breaker.record_failure()
    assert state(breaker) == "open"
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()
    assert breaker.opened_count == 2
