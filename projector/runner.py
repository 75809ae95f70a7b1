"""Runs one projection: resume from its checkpoint, apply batches bounded by size and time, follow live.

Transient failures (store or NATS away, connection reset) are retried with capped backoff and the
read restarts from the stored checkpoint, so nothing is skipped or applied twice. A moved checkpoint
(a rebuild was swapped in) is handled the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from eventlog import EventLog, EventLogError, EventLogUnavailable, RawRecord
from projector.errors import CheckpointMoved, ProjectionUnavailable
from projector.records import Projection

log = logging.getLogger(__name__)

_BACKOFF_S: Final = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_STATUS_INTERVAL_S: Final = 1.0


@dataclass(frozen=True)
class RunnerStatus:
    """A projection's progress: last applied seq, stream head, lag and recent rate."""

    name: str
    seq: int
    stream_last_seq: int
    lag: int
    events_per_s: float
    retries: int


class ProjectionRunner:
    """Drives one ``Projection`` from the log; ``run()`` until cancelled (or the end with ``until_end``)."""

    def __init__(
        self,
        projection: Projection,
        *,
        log: EventLog,
        batch_size: int = 5000,
        max_batch_wait_s: float = 0.2,
    ) -> None:
        self.projection = projection
        self._log = log
        self._batch_size = batch_size
        self._max_wait_s = max_batch_wait_s
        self.seq = 0
        self.stream_last_seq = 0
        self.retries = 0
        self._rate_window: deque[tuple[float, int]] = deque(maxlen=64)
        # Log heads seen by the status poll and when: applying past one measures log → projection
        # latency (to within the poll interval).
        self._heads: deque[tuple[int, float]] = deque(maxlen=1024)
        self.on_latency: Callable[[str, float], None] | None = None

    @property
    def name(self) -> str:
        """The projection's name."""
        return self.projection.name

    def status(self) -> RunnerStatus:
        """Current progress figures."""
        rate = 0.0
        if len(self._rate_window) >= 2:
            (t0, s0), (t1, s1) = self._rate_window[0], self._rate_window[-1]
            if t1 > t0:
                rate = (s1 - s0) / (t1 - t0)
        return RunnerStatus(
            self.name,
            self.seq,
            self.stream_last_seq,
            max(0, self.stream_last_seq - self.seq),
            rate,
            self.retries,
        )

    async def run(self, *, until_end: bool = False) -> None:
        """Project until cancelled; with ``until_end``, return once the stream head at start is applied."""
        attempt = 0
        target: int | None = None
        status_task = asyncio.create_task(self._track_stream())
        try:
            while True:
                try:
                    self.seq = await self.projection.open()
                    if until_end:
                        if target is None:
                            target = (await self._log.info()).last_seq
                        if self.seq >= target:
                            return
                    await self._consume(to_seq=target)
                    if until_end:
                        return
                except (ProjectionUnavailable, EventLogUnavailable) as e:
                    delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
                    attempt += 1
                    self.retries += 1
                    log.warning(
                        "%s: %s; retrying in %.1fs (attempt %d)", self.name, e, delay, attempt
                    )
                    await self.projection.close()
                    await asyncio.sleep(delay)  # capped backoff before reconnecting
                    continue
                except CheckpointMoved as e:
                    log.info("%s: %s; resuming from the stored checkpoint", self.name, e)
                    continue
                attempt = 0
        finally:
            status_task.cancel()
            await asyncio.gather(status_task, return_exceptions=True)

    async def _consume(self, *, to_seq: int | None) -> None:
        # Two-stage pipeline: batch k+1 is decoded (CPU, this thread) while batch k is written (the
        # store's own process/thread); writes stay strictly in order, one at a time.
        writing: asyncio.Task[int] | None = None
        try:
            async for batch in self._log.read_raw(
                self.seq + 1,
                to_seq=to_seq,
                subjects=self.projection.subjects,
                batch_size=self._batch_size,
                max_wait_s=self._max_wait_s,
                follow=to_seq is None,
            ):
                if not batch:
                    continue
                last = batch[-1].seq
                self.stream_last_seq = max(self.stream_last_seq, last)
                # Replaying to a known end (a rebuild), only its last batch is caught up: a short batch
                # mid-replay (a slow read) must not trigger the projection's caught-up work (DuckDB's fold).
                caught_up = (
                    last >= to_seq
                    if to_seq is not None
                    else len(batch) < self._batch_size or last >= self.stream_last_seq
                )
                prepared = self.projection.prepare(batch)
                if writing is not None:
                    await self._finished(writing)
                writing = asyncio.create_task(self._write(batch, caught_up, prepared))
                if caught_up:  # nothing to overlap with; surface the result (and any error) now
                    await self._finished(writing)
                    writing = None
            if writing is not None:
                await self._finished(writing)
                writing = None
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)

    async def _write(self, batch: Sequence[RawRecord], caught_up: bool, prepared: object) -> int:
        await self.projection.apply(batch, caught_up=caught_up, prepared=prepared)
        return batch[-1].seq

    async def _finished(self, task: asyncio.Task[int]) -> None:
        self.seq = await task
        now = time.monotonic()
        self._rate_window.append((now, self.seq))
        while self._heads and self._heads[0][0] <= self.seq:
            _, seen_at = self._heads.popleft()
            if self.on_latency is not None:
                self.on_latency(self.name, now - seen_at)

    async def _track_stream(self) -> None:
        while True:
            try:
                head = (await self._log.info()).last_seq
                if head > self.stream_last_seq and head > self.seq:
                    self._heads.append((head, time.monotonic()))
                self.stream_last_seq = max(self.stream_last_seq, head)
            except EventLogError as e:
                log.debug("%s: stream info unavailable: %s", self.name, e)
            await asyncio.sleep(_STATUS_INTERVAL_S)  # periodic status poll

    async def wait_for_seq(self, seq: int, *, timeout_s: float) -> None:
        """Return once ``seq`` is applied; raise TimeoutError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self.seq < seq:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} at {self.seq}, waiting for {seq}")
            await asyncio.sleep(0.02)  # poll interval
