"""``DurableSink``: the ``EventSink`` that gets every event into the log, via the spool if need be.

Order is kept with one FIFO in three parts: the batch in flight, then the spool, then the buffer.
A single pump task drains the spool before taking anything from the buffer, so events reach the
log in submission order. ``submit`` puts events in the bounded buffer; when it is full, the whole
buffer moves to the spool tail (it is newer than everything spooled). While the log is unreachable
or the breaker is open, the pump moves buffered events to the spool. A batch in flight that fails
goes to the *front* of the spool (``Spool.prepend``): it is older than anything spooled meanwhile.
Retries reuse each event's ``event_id``, so the log's dedup turns a re-send into a no-op.

One batch is in flight at a time (``EventLog.append_many`` pipelines its events); batches form by
size (``batch_size``) and a short time bound (``linger_s``).

The durability point: an event is safe once the log acked it or the spool fsync'd it. No event
stays only in memory longer than ``max_memory_s`` (default 250 ms): a guard task moves whatever is
older to the spool whatever the breaker says, the buffer to its tail and the batch in flight to its
front (``Spool.prepend``; if the log acks the batch after all, that head segment is dropped). So a
kill -9 during a stalled append loses nothing (docs/decisions/013-durability-point.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from eventlog import AppendFailed, AppendRejected, EventLog, EventLogError
from ingest.durable.breaker import CircuitBreaker
from ingest.durable.buffer import Entry, EventBuffer, Ticket, settle_all
from ingest.durable.deadletter import DeadLetterFile
from ingest.durable.errors import SinkClosed, SpoolError
from ingest.durable.spool import Spool, SpoolBatch
from ingest.failure_events import failure_event
from schemas.codec import Codec
from schemas.events import Event, IngestFailed
from schemas.status import SinkStatus

log = logging.getLogger(__name__)

AckCallback = Callable[[Sequence[Event]], None]


class DurableSink:
    """Buffer → log, with a circuit breaker and a durable spool; never drops an event."""

    def __init__(
        self,
        *,
        spool: Spool,
        dead_letters: DeadLetterFile,
        log: EventLog | None = None,
        breaker: CircuitBreaker | None = None,
        buffer_size: int = 10_000,
        batch_size: int = 1000,
        linger_s: float = 0.002,
        retry_interval_s: float = 0.25,
        spool_interval_s: float = 0.05,
        max_memory_s: float = 0.25,
        on_ack: AckCallback | None = None,
    ) -> None:
        self._spool = spool
        self._dead_letters = dead_letters
        self._log = log
        self._breaker = breaker or CircuitBreaker()
        self._buffer = EventBuffer(buffer_size)
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._retry_interval_s = retry_interval_s
        self._spool_interval_s = spool_interval_s
        if max_memory_s <= 0:
            raise ValueError("max_memory_s must be positive")
        self._max_memory_s = max_memory_s
        self._on_ack = on_ack
        self.duplicates = 0  # appends the log already held (its dedup answered)
        self._wake = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self._guard_task: asyncio.Task[None] | None = None
        # The batch the pump is appending from the buffer, and its spool copy once it was overdue.
        self._in_flight: list[Entry] = []
        self._in_flight_spooled: SpoolBatch | None = None
        self._closing = False
        self._closed = False
        self.appended = 0
        self.spooled = 0
        self.last_error: str | None = None
        self._refused: set[str] = set()
        # Disk trouble: while the spool cannot be written, events wait in memory and
        # ``submit_many`` waits before enqueuing more (back-pressure); it ends by itself.
        self._accepting = asyncio.Event()
        self._accepting.set()
        self._blocked_since: float | None = None
        self._next_spool_attempt = 0.0
        self.spool_write_failures = 0

    # --- EventSink --------------------------------------------------------------------------------

    def submit(self, event: Event) -> None:
        """Enqueue one event; never blocks on the network. Raises ``SinkClosed`` after ``close``.

        While the spool cannot be written (``intake_paused``) a full buffer keeps growing in memory
        rather than dropping anything; producers that can wait use ``submit_many``.
        """
        if self._closed:
            raise SinkClosed(f"sink closed; event {event.event_id} not accepted")
        if self._buffer.full:
            self._move_buffer_to_spool()
        self._buffer.put(event)
        self._wake.set()

    async def submit_many(self, events: Sequence[Event]) -> None:
        """Wait while intake is paused, enqueue events, wait until each is acked or durably spooled."""
        if self._closed:
            raise SinkClosed(f"sink closed; {len(events)} event(s) not accepted")
        await self._accepting.wait()
        if self._closed:
            raise SinkClosed(f"sink closed; {len(events)} event(s) not accepted")
        ticket = Ticket(len(events))
        for event in events:
            if self._buffer.full:
                self._move_buffer_to_spool()
            self._buffer.put(event, ticket)
        self._wake.set()
        await ticket.future

    async def wait_drained(self, *, stall_s: float = 30.0) -> bool:
        """Wait until every event accepted so far is in the log (buffer, batch in flight and spool
        all empty); False once ``stall_s`` passes without the log taking an event."""
        loop = asyncio.get_running_loop()
        appended, since = self.appended, loop.time()
        while self._buffer or self._in_flight or self._spool.depth_records:
            if self.appended != appended:
                appended, since = self.appended, loop.time()
            elif loop.time() - since >= stall_s:
                return False
            self._wake.set()
            await asyncio.sleep(0.05)  # polled: the pump has no completion signal to wait on
        return True

    @property
    def intake_paused(self) -> bool:
        """True while the spool cannot be written and events wait in memory (disk full)."""
        return self._blocked_since is not None

    # --- lifecycle --------------------------------------------------------------------------------

    def attach(self, event_log: EventLog) -> None:
        """Use ``event_log`` from now on (the log was unreachable when the sink started)."""
        self._log = event_log
        self._wake.set()

    async def start(self) -> None:
        """Open the spool and start the pump."""
        if not self._spool.is_open:
            await asyncio.to_thread(self._spool.open)
        self._pump_task = asyncio.create_task(self._supervise(), name="durable-sink-pump")
        self._guard_task = asyncio.create_task(self._guard_memory(), name="durable-sink-guard")

    async def close(self, *, drain_timeout_s: float = 10.0) -> None:
        """Drain the buffer to the log (or the spool), fsync and close the spool.

        Nothing is lost unless the log is unreachable *and* the spool cannot be written: then the
        events still in memory are counted and logged (their sources have not been told they are
        safe) and the sink closes anyway, so a shutdown always finishes.
        """
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        cancelled = False
        task = self._pump_task
        if task is not None:
            try:
                await asyncio.wait_for(self._until_drained(task), timeout=drain_timeout_s)
            except TimeoutError:
                log.warning(
                    "sink: drain did not finish in %.1fs; spooling the rest", drain_timeout_s
                )
            except asyncio.CancelledError:
                cancelled = True
        for background in (task, self._guard_task):
            if background is not None and not background.done():
                background.cancel()
        await asyncio.gather(
            *(t for t in (task, self._guard_task) if t is not None), return_exceptions=True
        )
        self._final_spool()
        if cancelled:
            raise asyncio.CancelledError

    async def _until_drained(self, pump: asyncio.Task[None]) -> None:
        """Until the pump is done, or everything left is durable (a stalled log need not be waited
        for: what the pump still tries to append is already in the spool)."""
        while not pump.done():
            if self._oldest_in_memory() is None:
                return
            await asyncio.wait(
                {pump}, timeout=self._max_memory_s / 2
            )  # re-check as the guard spools

    def _final_spool(self) -> None:
        self._next_spool_attempt = 0.0
        if not self._move_buffer_to_spool():
            log.error(
                "sink: %d event(s) could not be saved (the log is unreachable and the spool "
                "cannot be written: %s); their sources were not told they are safe",
                len(self._buffer),
                self.last_error,
            )
        self._closed = True
        self._accepting.set()  # wake waiting producers: they get SinkClosed
        self._spool.close()
        if self._spool.depth_records:
            log.info(
                "sink closed with %d event(s) in the spool; drained at next start",
                self._spool.depth_records,
            )

    def status(self) -> SinkStatus:
        """Buffer and spool depth, breaker state, counters and the last error."""
        return SinkStatus(
            buffer_depth=len(self._buffer),
            buffer_capacity=self._buffer.capacity,
            spool_records=self._spool.depth_records,
            spool_bytes=self._spool.depth_bytes,
            breaker=self._breaker.state,
            log_connected=self._log is not None and self._log.connected,
            appended=self.appended,
            spooled=self.spooled,
            dead_lettered=self._dead_letters.count,
            last_error=self.last_error,
            duplicates=self.duplicates,
            intake_paused=self.intake_paused,
            spool_write_failures=self.spool_write_failures,
        )

    # --- the durability point ----------------------------------------------------------------------

    async def _guard_memory(self) -> None:
        """Spool every event that has been only in memory for ``max_memory_s``, until the sink closes."""
        while True:
            oldest = self._oldest_in_memory()
            wait_s = self._max_memory_s
            if oldest is not None:
                wait_s = oldest + self._max_memory_s - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)  # until the oldest event in memory is due, not polling
                continue
            if not self._spool_overdue():
                await asyncio.sleep(self._retry_interval_s)  # disk trouble: retry after a pause

    def _oldest_in_memory(self) -> float | None:
        """When the oldest event that is only in memory was submitted (None: there is none)."""
        if self._in_flight and self._in_flight_spooled is None:
            return self._in_flight[0].submitted_at
        if self._buffer:
            return self._buffer.oldest_submitted_at()
        return None

    def _spool_overdue(self) -> bool:
        """Spool what is due; False when the spool could not be written (it stays in memory)."""
        now = time.monotonic()
        if (
            self._in_flight
            and self._in_flight_spooled is None
            and now - self._in_flight[0].submitted_at >= self._max_memory_s
        ):
            # Older than everything spooled: it goes in front, as a failed batch would.
            try:
                self._in_flight_spooled = self._spool.prepend([e.event for e in self._in_flight])
            except SpoolError as e:
                self._spool_failed(e)
                return False
            self._spool_ok()
            self.spooled += len(self._in_flight)
            settle_all(self._in_flight)
        if self._buffer and self._buffer.oldest_age_s() >= self._max_memory_s:
            self._next_spool_attempt = 0.0  # the guard paces its own retries
            return self._move_buffer_to_spool()
        return True

    # --- the pump ---------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            try:
                await self._pump()
                return
            except SpoolError as e:
                # Disk trouble: events stay in the buffer (restored on failure); retry after a pause.
                self._spool_failed(e)
            except Exception as e:
                # A bug must not stop the pump (submit_many callers would wait forever); the batch
                # in flight was already spooled by ``_send_buffer_batch``.
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("sink: pump failed; restarting it")
            if self._closing:
                return
            await asyncio.sleep(self._retry_interval_s * 4)  # back-off before restarting the pump

    async def _pump(self) -> None:
        while True:
            self._spool.sync()
            if self._spool.depth_records:
                if self._closing:
                    self._move_buffer_to_spool()
                    return
                if self._log_ready() and self._breaker.allow():
                    if not await self._drain_spool_batch():
                        await self._pause(self._retry_interval_s)
                    elif self._buffer and self._buffer.oldest_age_s() >= self._spool_interval_s:
                        # Catching up: newer events wait behind the spool anyway; make them durable
                        # now (and release ``submit_many`` callers) instead of holding them in memory.
                        self._move_buffer_to_spool()
                    continue
                self._move_buffer_to_spool()
                await self._pause(
                    min(self._spool_interval_s, max(0.01, self._breaker.seconds_until_probe()))
                )
                continue
            if self._buffer:
                if not self._closing and len(self._buffer) < self._batch_size:
                    wait_s = self._linger_s - self._buffer.oldest_age_s()
                    if wait_s > 0:
                        await self._pause(wait_s)
                        continue
                if self._log_ready() and self._breaker.allow():
                    await self._send_buffer_batch()
                elif not self._move_buffer_to_spool():
                    if self._closing:
                        return  # nowhere to put them: close() counts and reports them
                    await self._pause(self._retry_interval_s)
                continue
            if self._closing:
                return
            self._wake.clear()
            await self._wake.wait()

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` (pacing between attempts); a close request cuts it short."""
        if self._closing:
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wait_closing(), timeout=seconds)

    async def _wait_closing(self) -> None:
        while not self._closing:
            self._wake.clear()
            await self._wake.wait()

    def _log_ready(self) -> bool:
        return self._log is not None and self._log.connected

    async def _send_buffer_batch(self) -> None:
        entries = self._buffer.take(self._batch_size)
        events = [entry.event for entry in entries]
        self._in_flight = entries
        self._in_flight_spooled = None
        try:
            stored = await self._append(events)
        except (AppendFailed, EventLogError, OSError, TimeoutError) as e:
            self._failed(e)
            unacked = e.unacked if isinstance(e, AppendFailed) else events
            self._spool_in_flight(unacked)
            return
        except BaseException:
            # Cancelled (shutdown) or a bug: the batch is older than anything spooled meanwhile.
            self._spool_in_flight(events)
            raise
        spooled_copy = self._in_flight_spooled
        self._in_flight = []
        self._in_flight_spooled = None
        if spooled_copy is not None:
            # The guard spooled the batch while the log was slow to ack it: drop that copy.
            self._spool.commit(spooled_copy)
        self._breaker.record_success()
        self._acked(stored)
        if spooled_copy is None:
            settle_all(entries)
        if not self._buffer:
            self._spool_ok()  # nothing waits in memory any more: the log took it all

    def _spool_in_flight(self, unacked: Sequence[Event]) -> None:
        """The batch in flight failed: spool what the log did not ack in front (unless already there)."""
        entries = self._in_flight
        already = self._in_flight_spooled is not None
        self._in_flight = []
        self._in_flight_spooled = None
        if not already:
            self._spool_in_front(entries, unacked)

    async def _drain_spool_batch(self) -> bool:
        batch = self._spool.peek(self._batch_size)
        if batch is None:
            self._breaker.record_success()
            return True
        try:
            stored = await self._append(batch.events)
        except (AppendFailed, EventLogError, OSError, TimeoutError) as e:
            self._failed(e)
            return False
        self._dead_letter_undecodable(batch)
        self._spool.commit(batch)
        self._breaker.record_success()
        self._acked(stored)
        return True

    async def _append(self, events: list[Event]) -> list[Event]:
        """Append ``events`` and return those stored; refused ones are dead-lettered, the rest retried."""
        remaining = (
            [x for x in events if x.event_id not in self._refused] if self._refused else events
        )
        while remaining:
            assert self._log is not None
            try:
                results = await self._log.append_many(remaining)
                self.duplicates += sum(1 for r in results if r.duplicate)
                return remaining
            except AppendRejected as e:
                refused = [x for x in remaining if x.event_id == e.event_id]
                if not refused:
                    raise AppendFailed(remaining, e.reason) from e
                for event in refused:
                    self._dead_letter(event, e.reason)
                self._refused.add(e.event_id)  # dead-lettered once, even if this batch is retried
                remaining = [x for x in remaining if x.event_id != e.event_id]
        return remaining

    # --- helpers ----------------------------------------------------------------------------------

    def _failed(self, error: BaseException) -> None:
        self._breaker.record_failure()
        self.last_error = f"{type(error).__name__}: {error}"
        log.warning("sink: append failed (%s); breaker %s", self.last_error, self._breaker.state)

    def _acked(self, events: Sequence[Event]) -> None:
        self.appended += len(events)
        if self._on_ack is not None:
            self._on_ack(events)

    def _spool_in_front(self, entries: list[Entry], events: Sequence[Event]) -> None:
        if not events:
            settle_all(entries)
            return
        try:
            self._spool.prepend(events)
        except SpoolError as e:
            self._buffer.restore_front(entries)
            self._spool_failed(e)
            return
        self._spool_ok()
        self.spooled += len(events)
        settle_all(entries)

    def _move_buffer_to_spool(self) -> bool:
        """Move the whole buffer to the spool tail (fsync'd); False when the spool cannot take it."""
        if not self._buffer:
            return True
        if self._blocked_since is not None and time.monotonic() < self._next_spool_attempt:
            return False  # the disk was full a moment ago: retry at the paced time, not per event
        entries = self._buffer.take_all()
        try:
            self._spool.append([e.event for e in entries], sync=True)
        except SpoolError as e:
            self._buffer.restore_front(entries)
            self._spool_failed(e)
            return False
        self._spool_ok()
        self.spooled += len(entries)
        settle_all(entries)
        self._wake.set()
        return True

    def _spool_failed(self, error: SpoolError) -> None:
        """A spool write failed: pause intake (once per episode, as a log line and an event)."""
        self.spool_write_failures += 1
        self.last_error = str(error)
        self._next_spool_attempt = time.monotonic() + self._retry_interval_s
        if self._blocked_since is not None:
            return
        self._blocked_since = time.monotonic()
        self._accepting.clear()
        log.error(
            "sink: the spool cannot be written (%s); intake paused, %d event(s) wait in memory "
            "until the log or the disk takes them",
            error,
            len(self._buffer) + len(self._in_flight),
        )
        oldest = self._in_flight[0] if self._in_flight else None
        if oldest is None and self._buffer:
            oldest = self._buffer.take(1)[0]
            self._buffer.restore_front([oldest])
        if oldest is not None:
            self._buffer.put(
                failure_event(
                    account=oldest.event.account,
                    kind="log",
                    error="spool write failed: intake paused",
                    detail=str(error),
                    observed_at=datetime.now(UTC),
                    source=oldest.event.source,
                )
            )

    def _spool_ok(self) -> None:
        """A spool write worked (or nothing waits in memory any more): resume intake."""
        if self._blocked_since is None:
            return
        log.warning(
            "sink: the spool is writable again after %.1fs; intake resumed",
            time.monotonic() - self._blocked_since,
        )
        self._blocked_since = None
        self._accepting.set()

    def _dead_letter(self, event: Event, reason: str) -> None:
        payload = msgspec.json.encode(event)
        self._dead_letters.write(event_id=event.event_id, reason=reason, payload=payload)
        log.error(
            "sink: event %s refused by the log for good: %s (dead-lettered)", event.event_id, reason
        )
        if isinstance(event, IngestFailed) and event.error == "append rejected":
            return  # never loop on a refused report of a refusal
        self.submit(
            failure_event(
                account=event.account,
                kind="log",
                error="append rejected",
                detail=f"{event.event_id}: {reason}",
                observed_at=datetime.now(UTC),
                source=event.source,
            )
        )

    def _dead_letter_undecodable(self, batch: SpoolBatch) -> None:
        for payload, reason in batch.bad:
            self._dead_letters.write(
                event_id=None, reason=f"spooled record does not decode: {reason}", payload=payload
            )


def build_sink(
    data_dir: Path,
    *,
    log: EventLog | None = None,
    codec: Codec | None = None,
    spool_subdir: str = "spool",
    buffer_size: int = 10_000,
    batch_size: int = 1000,
    linger_s: float = 0.002,
    max_memory_s: float = 0.25,
    segment_max_bytes: int = 16 * 1024 * 1024,
    fsync_every: int = 64,
    breaker_failures: int = 5,
    breaker_window_s: float = 60.0,
    breaker_open_s: float = 30.0,
    on_ack: AckCallback | None = None,
) -> DurableSink:
    """A ``DurableSink`` spooling to ``<data_dir>/<spool_subdir>`` with dead letters under ``<data_dir>/dead-letter``.

    One process per spool (it is locked): a second producer process on the same data dir, such as
    the export importer next to a running ingest, passes its own ``spool_subdir``.
    """
    return DurableSink(
        spool=Spool(
            data_dir / spool_subdir,
            codec=codec or Codec(),
            segment_max_bytes=segment_max_bytes,
            fsync_every=fsync_every,
        ),
        dead_letters=DeadLetterFile(data_dir / "dead-letter" / f"{spool_subdir}.jsonl"),
        log=log,
        breaker=CircuitBreaker(
            failures=breaker_failures, window_s=breaker_window_s, open_s=breaker_open_s
        ),
        buffer_size=buffer_size,
        batch_size=batch_size,
        linger_s=linger_s,
        max_memory_s=max_memory_s,
        on_ack=on_ack,
    )
