"""A small real ``EventSink`` for tests: appends straight to the ``EventLog`` (no spool)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from types import TracebackType

from eventlog import EventLog, Record
from schemas.events import Event


class LogSink:
    """``submit`` queues; a drainer task appends in order; ``submit_many`` waits for the acks."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.submitted: list[Event] = []

    async def __aenter__(self) -> LogSink:
        self._task = asyncio.create_task(self._drain_forever())
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.flush()
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def submit(self, event: Event) -> None:
        self.submitted.append(event)
        self._queue.put_nowait(event)

    intake_paused = False  # never paused (a test may set it)

    async def submit_many(self, events: Sequence[Event]) -> None:
        self.submitted.extend(events)
        async with self._lock:
            await self._drain_once()
            async with asyncio.timeout(20):
                await self._log.append_many(list(events))

    async def flush(self) -> None:
        async with self._lock:
            await self._drain_once()

    async def _drain_once(self) -> None:
        batch: list[Event] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            async with asyncio.timeout(20):
                await self._log.append_many(batch)

    async def _drain_forever(self) -> None:
        while True:
            first = await self._queue.get()
            async with self._lock:
                batch = [first]
                while not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                async with asyncio.timeout(20):
                    await self._log.append_many(batch)


async def read_all(log: EventLog, subjects: Sequence[str] | None = None) -> list[Event]:
    """Every decoded event in the log (optionally filtered by subjects), in order."""
    out: list[Event] = []
    async for batch in log.read(1, subjects=subjects):
        for rec in batch:
            assert isinstance(rec, Record), rec
            out.append(rec.event)
    return out
