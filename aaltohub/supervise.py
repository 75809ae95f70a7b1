"""Restart budgets for the children of ``aaltohub up`` (servers and services), like systemd's.

A child that dies is restarted after a capped exponential back-off; more than ``burst`` restarts
within ``interval_s`` (systemd's ``StartLimitBurst`` / ``StartLimitIntervalSec``, 5 in 10 s there;
ours is 5 in 60 s because a restart here includes a server start) means something is wrong that a
restart will not fix: ``up`` then stops in order and exits 1.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RestartPolicy:
    """How often and how fast a dead child is restarted."""

    burst: int = 5
    interval_s: float = 60.0
    first_backoff_s: float = 0.5
    max_backoff_s: float = 10.0


class RestartBudget:
    """The restarts of one child: the delay before the next one, or None when the budget is spent."""

    def __init__(
        self, policy: RestartPolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._recent: deque[float] = deque()
        self.count = 0

    def next_delay_s(self) -> float | None:
        """Take one restart: the back-off to wait first, or None (too many restarts lately)."""
        now = self._clock()
        while self._recent and now - self._recent[0] > self._policy.interval_s:
            self._recent.popleft()
        if len(self._recent) >= self._policy.burst:
            return None
        self._recent.append(now)
        self.count += 1
        backoff = self._policy.first_backoff_s * 2 ** (len(self._recent) - 1)
        return float(min(self._policy.max_backoff_s, backoff))
