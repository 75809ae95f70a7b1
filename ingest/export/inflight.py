"""Batches of an import being appended while the next one is parsed."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from ingest.seams import EventSink
from schemas.events import Event


class InFlight:
    """Up to ``limit`` batches being appended while the next is built, started in file order.

    With ``limit=1`` (the importer's default) a batch starts only after the previous one is acked, so
    a chat's events reach the log in file order (the sink may reorder only its own retries). With more,
    a batch may start while the previous one is still publishing; each event is still appended once.
    """

    def __init__(
        self, sink: EventSink, on_appended: Callable[[list[Event]], None], *, limit: int
    ) -> None:
        self._sink = sink
        self._on_appended = on_appended
        self._limit = limit
        self._tasks: deque[tuple[asyncio.Task[None], list[Event]]] = deque()

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def submit(self, batch: list[Event]) -> None:
        """Wait until fewer than ``limit`` batches are in flight, then start appending ``batch``."""
        while len(self._tasks) >= self._limit:
            await self._wait_oldest()
        if batch:
            self._tasks.append((asyncio.create_task(self._sink.submit_many(batch)), batch))
            await asyncio.sleep(0)  # let it publish before we go back to parsing

    async def _wait_oldest(self) -> None:
        task, batch = self._tasks[0]
        await task  # the sink bounds its own waits
        self._tasks.popleft()
        self._on_appended(batch)

    async def drain(self) -> None:
        """Wait until every batch in flight is appended."""
        while self._tasks:
            await self._wait_oldest()

    async def abort(self) -> None:
        """Cancel batches still in flight (their events may or may not be stored; re-runs are idempotent)."""
        while self._tasks:
            task, _ = self._tasks.popleft()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
