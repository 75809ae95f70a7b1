"""The bounded in-memory buffer in front of the log, and tickets that resolve when events are safe."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

from schemas.events import Event


class Ticket:
    """Resolves (its ``future``) once each of its ``remaining`` events is acked by the log or spooled."""

    __slots__ = ("future", "remaining")

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if count == 0:
            self.future.set_result(None)

    def settle(self, count: int = 1) -> None:
        """``count`` of the ticket's events are safe."""
        self.remaining -= count
        if self.remaining <= 0 and not self.future.done():
            self.future.set_result(None)


class Entry(NamedTuple):
    """One buffered event, the ticket waiting for it (if any) and when it was submitted."""

    event: Event
    ticket: Ticket | None
    submitted_at: float


def settle_all(entries: Iterable[Entry]) -> None:
    """Settle the tickets of ``entries`` (they were acked or spooled)."""
    for entry in entries:
        if entry.ticket is not None:
            entry.ticket.settle()


class EventBuffer:
    """A FIFO of at most ``capacity`` entries; the caller decides what to do when it is full."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("buffer capacity must be at least 1")
        self.capacity = capacity
        self._entries: deque[Entry] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def full(self) -> bool:
        """True when no more entries fit."""
        return len(self._entries) >= self.capacity

    def put(self, event: Event, ticket: Ticket | None = None) -> None:
        """Add an entry at the end (the caller checked ``full``)."""
        self._entries.append(Entry(event, ticket, time.monotonic()))

    def restore_front(self, entries: list[Entry]) -> None:
        """Put entries back at the front, in their order (a batch that could not be handed on)."""
        self._entries.extendleft(reversed(entries))

    def take(self, count: int) -> list[Entry]:
        """Remove and return up to ``count`` entries from the front."""
        entries = self._entries
        n = min(count, len(entries))
        return [entries.popleft() for _ in range(n)]

    def take_all(self) -> list[Entry]:
        """Remove and return every entry."""
        out = list(self._entries)
        self._entries.clear()
        return out

    def oldest_submitted_at(self) -> float | None:
        """``time.monotonic()`` when the oldest entry was submitted (None when empty)."""
        return self._entries[0].submitted_at if self._entries else None

    def oldest_age_s(self) -> float:
        """Seconds since the oldest entry was submitted (0 when empty)."""
        return time.monotonic() - self._entries[0].submitted_at if self._entries else 0.0
