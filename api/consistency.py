"""Read-your-writes waits (``?min_seq=``) on one shared watch of the projection's checkpoint.

Each waiting request used to poll ``projection_checkpoints`` itself for up to 5 s, so N waiting
clients cost N pool connections and N queries per poll interval. Here one task polls the checkpoint
while anyone waits (one query per ``interval_s``, whatever the number of waiters) and wakes every
waiter whose seq has been applied; with nobody waiting it sleeps without a query
(docs/decisions/025-bounded-api-resources.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from typing import Final

from api.db import Database
from api.errors import ApiError, ServiceUnavailable

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S: Final = 0.02  # a waiter is answered at most this long after the apply


class SeqWatch:
    """Wakes ``wait_for(seq)`` callers once ``projection`` has applied ``seq``; one poll for all."""

    def __init__(
        self, db: Database, *, projection: str = "postgres", interval_s: float = DEFAULT_INTERVAL_S
    ) -> None:
        self._db = db
        self._projection = projection
        self._interval_s = interval_s
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []  # heap by seq
        self._order = itertools.count()
        self._someone_waits = asyncio.Event()
        self._applied = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def waiters(self) -> int:
        """Requests waiting now."""
        return sum(1 for _, _, f in self._waiters if not f.done())

    async def start(self) -> None:
        """Start the shared watch."""
        self._task = asyncio.create_task(self._watch(), name="min-seq-watch")

    async def stop(self) -> None:
        """Stop watching; waiting requests get ``ServiceUnavailable``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _, _, future in self._waiters:
            if not future.done():
                future.set_exception(ServiceUnavailable("server shutting down"))
        self._waiters.clear()

    async def wait_for(self, seq: int, *, timeout_s: float) -> None:
        """Return once ``seq`` is applied; ``ServiceUnavailable`` after ``timeout_s``."""
        if seq <= self._applied:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (seq, next(self._order), future))
        self._someone_waits.set()
        try:
            async with asyncio.timeout(timeout_s):
                await future
        except TimeoutError:
            raise ServiceUnavailable(f"projection has not applied seq {seq} yet") from None
        finally:
            future.cancel()  # a no-op when answered; otherwise the watch drops it

    async def _watch(self) -> None:
        while True:
            await self._someone_waits.wait()
            try:
                applied = await self._db.checkpoint(self._projection)
            except ApiError as e:  # the database is down: waiters time out; keep watching
                log.debug("checkpoint watch: %s", e)
                applied = None
            if applied is not None:
                self._applied = max(self._applied, applied)
            while self._waiters and (
                self._waiters[0][2].done() or self._waiters[0][0] <= self._applied
            ):
                _, _, future = heapq.heappop(self._waiters)
                if not future.done():
                    future.set_result(None)
            if not any(not f.done() for _, _, f in self._waiters):
                self._waiters.clear()
                self._someone_waits.clear()
                continue
            await asyncio.sleep(self._interval_s)  # the shared poll interval
