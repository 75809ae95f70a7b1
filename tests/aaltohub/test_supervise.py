"""Restart budgets: capped exponential back-off, at most ``burst`` restarts per interval."""

from __future__ import annotations

from aaltohub.supervise import RestartBudget, RestartPolicy
from tests.ingest.durable.helpers import FakeClock


def test_back_off_doubles_up_to_its_cap() -> None:
    clock = FakeClock()
    budget = RestartBudget(
        RestartPolicy(burst=6, first_backoff_s=0.5, max_backoff_s=3.0), clock=clock
    )
    assert [budget.next_delay_s() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_the_budget_is_spent_after_burst_restarts_and_refills_after_the_interval() -> None:
    clock = FakeClock()
    budget = RestartBudget(RestartPolicy(burst=2, interval_s=60.0), clock=clock)
    assert budget.next_delay_s() is not None
    assert budget.next_delay_s() is not None
    assert budget.next_delay_s() is None
    clock.now += 61.0
    assert budget.next_delay_s() == RestartPolicy().first_backoff_s
    assert budget.count == 3
