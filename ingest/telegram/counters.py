"""Coalescing live engagement counter updates: at most one ``CountersUpdated`` per message a minute.

A popular channel post gets an ``UpdateChannelMessageViews`` for nearly every view; recording each
would flood the log with facts nobody reads. The first change of a message is recorded at once;
changes within the following minute are merged (the newest value of each counter wins) and held;
the held values are recorded when the minute is over (on the next update, or when the worker calls
``due``), so the log holds the counters at most a minute late and never loses the last value. Gap-
fill and catch-up record what they re-read without this limit (``known.reconcile``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

COALESCE_WINDOW: Final = timedelta(minutes=1)

CounterKey = tuple[int, int]  # (chat id, message id)


@dataclass(frozen=True)
class Counts:
    """Engagement counters of a message; None means "not reported by this update"."""

    views: int | None = None
    forwards: int | None = None
    replies: int | None = None

    def merged(self, newer: Counts) -> Counts:
        """These counts overlaid with the counters ``newer`` reports."""
        return Counts(
            views=self.views if newer.views is None else newer.views,
            forwards=self.forwards if newer.forwards is None else newer.forwards,
            replies=self.replies if newer.replies is None else newer.replies,
        )


class CounterCoalescer:
    """Decides which counter changes to record now and holds the rest until their minute is over."""

    def __init__(self, *, window: timedelta = COALESCE_WINDOW) -> None:
        self._window = window
        self._last_recorded: dict[CounterKey, datetime] = {}
        self._held: dict[CounterKey, Counts] = {}
        self._due: deque[tuple[datetime, CounterKey]] = deque()  # in the order they fall due

    def offer(self, key: CounterKey, counts: Counts, now: datetime) -> Counts | None:
        """The counts to record now for ``key``, or None when they are held for later."""
        last = self._last_recorded.get(key)
        if last is None or now - last >= self._window:
            held = self._held.pop(key, None)
            self._last_recorded[key] = now
            return counts if held is None else held.merged(counts)
        if key not in self._held:
            self._held[key] = counts
            self._due.append((last + self._window, key))
        else:
            self._held[key] = self._held[key].merged(counts)
        return None

    def due(self, now: datetime) -> list[tuple[CounterKey, Counts]]:
        """Held counts whose minute is over (to record now); forgets messages quiet for a minute."""
        out: list[tuple[CounterKey, Counts]] = []
        while self._due and self._due[0][0] <= now:
            _, key = self._due.popleft()
            held = self._held.pop(key, None)
            if held is not None:
                out.append((key, held))
                self._last_recorded[key] = now
        if len(self._last_recorded) > 4 * len(self._held) + 1024:
            cutoff = now - self._window
            for key in [k for k, t in self._last_recorded.items() if t < cutoff]:
                if key not in self._held:
                    del self._last_recorded[key]
        return out

    def __len__(self) -> int:
        return len(self._held)
