"""One shared reader of the log for live clients that resume from seqs older than the hub's memory.

Each such client used to create its own JetStream consumer (200 clients resuming from seq 0: 200
consumers, +500 MiB, failures). Here every catch-up is a *rider* on one reader: the reader reads
from the lowest position any rider still needs, hands each rider the matching records above its
own position, and rewinds when a rider arrives behind it (riders ahead ignore what they already
have). The reader paces itself by its riders: it waits while a rider has ``max_pending_events``
undelivered, and cuts off a rider that takes none for ``stall_s``
(docs/decisions/025-bounded-api-resources.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Final

from eventlog import BadRecord, EventLog, EventLogError, Record

if TYPE_CHECKING:  # api.live builds the reader; these are only its types
    from api.live import LiveFilter, LiveItem

log = logging.getLogger(__name__)

READ_BATCH: Final = 500


class CatchUpCutOff(Exception):
    """The rider stopped taking records (or the log failed); it resumes after ``last_seq``."""

    def __init__(self, reason: str, last_seq: int) -> None:
        super().__init__(f"{reason}; resume after seq {last_seq}")
        self.last_seq = last_seq


class _Rider:
    """One client's catch-up: records in ``(pos, end]`` that pass ``filter``."""

    def __init__(self, *, pos: int, end: int, filter: LiveFilter) -> None:
        self.pos = pos  # everything up to here is delivered (or queued)
        self.end = end
        self.filter = filter
        self.pending: deque[list[LiveItem]] = deque()
        self.pending_events = 0
        self.finished = False
        self.error: CatchUpCutOff | None = None
        self.changed = asyncio.Event()  # the reader queued, finished or failed
        self.drained = asyncio.Event()  # the client took what was queued
        self.delivered_seq = pos

    def push(self, items: list[LiveItem]) -> None:
        self.pending.append(items)
        self.pending_events += len(items)
        self.changed.set()

    def finish(self) -> None:
        self.finished = True
        self.changed.set()

    def fail(self, reason: str) -> None:
        self.error = CatchUpCutOff(reason, self.delivered_seq)
        self.changed.set()


class CatchUpReader:
    """The shared reader; ``read`` is what one client iterates."""

    def __init__(
        self,
        event_log: EventLog,
        *,
        to_item: Callable[[Record | BadRecord], LiveItem],
        max_pending_events: int,
        stall_s: float = 10.0,
    ) -> None:
        self._log = event_log
        self._to_item = to_item
        self._max_pending = max(READ_BATCH, max_pending_events)
        self._stall_s = stall_s
        self._riders: set[_Rider] = set()
        self._arrived = asyncio.Event()
        self._cursor = 0  # the reader has handed out everything up to here in its current pass
        self._rewind = False
        self._task: asyncio.Task[None] | None = None

    @property
    def riders(self) -> int:
        """Clients catching up now."""
        return len(self._riders)

    async def read(
        self, after_seq: int, upto_seq: int, filter: LiveFilter
    ) -> AsyncIterator[list[LiveItem]]:
        """Matching records in ``(after_seq, upto_seq]`` in seq order; ``CatchUpCutOff`` when cut off."""
        if upto_seq <= after_seq:
            return
        rider = _Rider(pos=after_seq, end=upto_seq, filter=filter)
        self._riders.add(rider)
        if self._task is not None and after_seq < self._cursor:
            self._rewind = True  # the reader is past this rider: start over from its position
        self._arrived.set()
        self._ensure_running()
        try:
            while True:
                while rider.pending:
                    items = rider.pending.popleft()
                    rider.pending_events -= len(items)
                    rider.delivered_seq = items[-1].seq
                    rider.drained.set()
                    yield items
                if rider.error is not None:
                    raise rider.error
                if rider.finished:
                    return
                rider.changed.clear()
                await rider.changed.wait()
        finally:
            self._riders.discard(rider)
            rider.drained.set()

    async def stop(self) -> None:
        """Stop the reader; riders still reading are cut off."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for rider in list(self._riders):
            rider.fail("server shutting down")

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="live-catch-up")

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            waiting = [r for r in self._riders if not r.finished and r.error is None]
            if not waiting:
                self._arrived.clear()
                continue
            start = min(r.pos for r in waiting) + 1
            end = max(r.end for r in waiting)
            self._cursor = start - 1
            self._rewind = False
            try:
                await self._one_pass(start, end)
            except EventLogError as e:
                log.warning("live catch-up read failed: %s", type(e).__name__)
                for rider in waiting:
                    rider.fail("live history unavailable")
                continue
            if self._rewind:
                continue
            for rider in list(self._riders):  # the pass covered these riders' whole range
                if rider.pos >= start - 1 and rider.end <= end and rider.error is None:
                    rider.pos = rider.end
                    rider.finish()

    async def _one_pass(self, start: int, end: int) -> None:
        async for batch in self._log.read(start, to_seq=end, batch_size=READ_BATCH):
            if not batch:
                continue
            items = [self._to_item(r) for r in batch if r.seq <= end]
            last = batch[-1].seq
            for rider in list(self._riders):
                if rider.finished or rider.error is not None or rider.pos < self._cursor:
                    continue  # done, cut off, or behind this pass (the rewind takes it)
                await self._hand_over(rider, items, last)
            self._cursor = min(last, end)
            if self._rewind or not self._riders:
                return

    async def _hand_over(self, rider: _Rider, items: list[LiveItem], last: int) -> None:
        mine = [i for i in items if rider.pos < i.seq <= rider.end and rider.filter.matches(i)]
        if mine:
            try:
                async with asyncio.timeout(self._stall_s):
                    while rider.pending_events + len(mine) > self._max_pending and rider.pending:
                        rider.drained.clear()
                        await rider.drained.wait()
            except TimeoutError:
                rider.fail("catch-up stalled")
                return
            rider.push(mine)
        rider.pos = max(rider.pos, min(last, rider.end))
        if rider.pos >= rider.end:
            rider.finish()
