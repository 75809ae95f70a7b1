"""A circuit breaker for the log: N failures in a window open it; after a pause one probe may pass."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """``failures`` failures within ``window_s`` open the breaker for ``open_s``; then one probe.

    A successful probe closes it, a failed probe opens it again. ``clock`` returns seconds
    (monotonic); tests inject a fake one.
    """

    def __init__(
        self,
        *,
        failures: int = 5,
        window_s: float = 60.0,
        open_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failures
        self._window_s = window_s
        self._open_s = open_s
        self._clock = clock
        self._failures: deque[float] = deque()
        self._state: BreakerState = "closed"
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.opened_count = 0

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose pause has passed reports ``half_open``."""
        if self._state == "open" and self._clock() - self._opened_at >= self._open_s:
            return "half_open"
        return self._state

    def seconds_until_probe(self) -> float:
        """How long until an attempt is allowed again (0 when allowed now)."""
        if self._state == "open":
            return max(0.0, self._opened_at + self._open_s - self._clock())
        return 0.0

    def allow(self) -> bool:
        """May an attempt be made now? In ``half_open`` only one caller gets True until it reports."""
        if self._state == "closed":
            return True
        if self._state == "open":
            if self._clock() - self._opened_at < self._open_s:
                return False
            self._state = "half_open"
            self._probe_in_flight = False
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        """The attempt succeeded: close the breaker and forget past failures."""
        self._state = "closed"
        self._probe_in_flight = False
        self._failures.clear()

    def record_failure(self) -> None:
        """The attempt failed: a failed probe re-opens; in ``closed`` count it within the window."""
        now = self._clock()
        if self._state == "half_open":
            self._open(now)
            return
        if self._state == "open":
            return
        self._failures.append(now)
        while self._failures and now - self._failures[0] > self._window_s:
            self._failures.popleft()
        if len(self._failures) >= self._threshold:
            self._open(now)

    def _open(self, now: float) -> None:
        self._state = "open"
        self._opened_at = now
        self._probe_in_flight = False
        self._failures.clear()
        self.opened_count += 1
