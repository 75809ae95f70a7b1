"""Live fan-out of the log: one shared follower, many bounded subscribers, resumable by seq.

One ``EventLog.follow`` feeds every subscriber, so 500 clients cost one consumer. A client that
resumes from an older seq first catches up from the in-memory history (or, older still, from the
one reader all such clients share: ``api.live_catchup``) and then continues from its live queue;
seqs at or below its watermark are dropped, so there is no gap and no duplicate. Each subscriber
holds at most ``max_events`` undelivered events; on overflow it is closed with a reason (the
client resumes from its last seq), never slowing others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import msgspec

from api.live_catchup import CatchUpCutOff, CatchUpReader
from eventlog import BadRecord, EventLog, EventLogError, Record
from schemas.events import AnyEvent, event_kind

log = logging.getLogger(__name__)


class LiveEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """What a live client receives per event."""

    seq: int
    subject: str
    kind: str
    chat_id: int | None
    event: AnyEvent


_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class LiveItem:
    """One log record, encoded once for every subscriber."""

    seq: int
    chat_id: int | None
    kind: str | None  # None: undecodable record (never delivered)
    json: str


def to_item(record: Record | BadRecord) -> LiveItem:
    """Encode a record for fan-out."""
    if isinstance(record, BadRecord):
        return LiveItem(record.seq, None, None, "")
    event = record.event
    kind = event_kind(event)
    env = LiveEnvelope(
        seq=record.seq, subject=record.subject, kind=kind, chat_id=event.chat_id, event=event
    )
    return LiveItem(record.seq, event.chat_id, kind, _encode(env).decode())


@dataclass(frozen=True, kw_only=True)
class LiveFilter:
    """Which events a client wants: one chat (or all) and some kinds (exact, or a ``message`` prefix)."""

    chat_id: int | None = None
    kinds: frozenset[str] = frozenset()

    def matches(self, item: LiveItem) -> bool:
        """True if ``item`` passes the filter."""
        if item.kind is None:
            return False
        if self.chat_id is not None and item.chat_id != self.chat_id:
            return False
        if (
            self.kinds
            and item.kind not in self.kinds
            and item.kind.split(".", 1)[0] not in self.kinds
        ):
            return False
        return True


class Chunk:
    """Consecutive matching items of one fan-out batch, encoded once for every subscriber sharing a filter."""

    __slots__ = ("_sse", "count", "first_seq", "inner", "items", "last_seq")

    def __init__(self, items: list[LiveItem]) -> None:
        self.items = items
        self.count = len(items)
        self.first_seq = items[0].seq
        self.last_seq = items[-1].seq
        self.inner = ",".join(i.json for i in items)  # the JSON array body of a WebSocket frame
        self._sse: str | None = None

    @property
    def sse(self) -> str:
        """The items as Server-Sent Events (built on first use, then shared)."""
        if self._sse is None:
            self._sse = "".join(
                f"id: {i.seq}\nevent: {i.kind}\ndata: {i.json}\n\n" for i in self.items
            )
        return self._sse


def frame(chunks: list[Chunk]) -> str:
    """A WebSocket text frame: one JSON array of the chunks' events."""
    if len(chunks) == 1:
        return f"[{chunks[0].inner}]"
    return "[" + ",".join(c.inner for c in chunks) + "]"


class SubscriberOverflow(Exception):
    """The subscriber fell too far behind and was cut off."""


class Subscriber:
    """One client's bounded queue of undelivered events."""

    def __init__(
        self, *, hub: Hub, filter: LiveFilter, after_seq: int, live_from: int, max_events: int
    ) -> None:
        self._hub = hub
        self.filter = filter
        self.after_seq = after_seq
        self.live_from = live_from
        self._max = max_events
        self._pending: deque[Chunk] = deque()
        self._pending_events = 0
        self._watermark = max(after_seq, live_from)
        self._wake = asyncio.Event()
        self.closed_reason: str | None = None
        self.last_seq = after_seq

    def offer(self, chunk: Chunk | None, batch_last_seq: int) -> None:
        """Queue this subscriber's chunk of a fan-out batch (never blocks); None when nothing matched."""
        if self.closed_reason is not None:
            return
        if chunk is not None and chunk.last_seq > self._watermark:
            if (
                chunk.first_seq <= self._watermark
            ):  # only when resuming from ahead of the hub (rare)
                chunk = Chunk([i for i in chunk.items if i.seq > self._watermark])
            self._pending.append(chunk)
            self._pending_events += chunk.count
        self._watermark = max(self._watermark, batch_last_seq)
        if self._pending_events > self._max:
            self.closed_reason = (
                f"buffer overflow ({self._max} events); resume after seq {self.last_seq}"
            )
            self._pending.clear()
            self._pending_events = 0
            self._hub.overflows += 1
            log.warning(
                "live subscriber cut off",
                extra={
                    "reason": "buffer overflow",
                    "last_seq": self.last_seq,
                    "buffer_events": self._max,
                },
            )
        self._wake.set()

    async def batches(self, *, idle_s: float | None = None) -> AsyncIterator[list[Chunk]]:
        """Catch-up chunks, then live chunks, in seq order; an empty list after ``idle_s`` without events."""
        if self.after_seq < self.live_from:
            try:
                async for items in self._hub.history(self.after_seq, self.live_from, self.filter):
                    if self.closed_reason is not None:
                        raise SubscriberOverflow(self.closed_reason)
                    if items:
                        self.last_seq = items[-1].seq
                        yield [Chunk(items)]
            except CatchUpCutOff as e:
                raise SubscriberOverflow(str(e)) from e
        while True:
            if self.closed_reason is not None:
                raise SubscriberOverflow(self.closed_reason)
            if not self._pending:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=idle_s)
                except TimeoutError:
                    yield []
                    continue
                continue
            chunks = list(self._pending)
            self._pending.clear()
            self._pending_events = 0
            self.last_seq = chunks[-1].last_seq
            yield chunks


class Hub:
    """The shared follower of the log and its subscribers."""

    def __init__(
        self, event_log: EventLog, *, history_events: int, max_events: int, batch_wait_s: float
    ) -> None:
        self._log = event_log
        self._history: deque[LiveItem] = deque(maxlen=max(1, history_events))
        self._subs: set[Subscriber] = set()
        self._max_events = max_events
        self._batch_wait_s = batch_wait_s
        # A fan-out batch must fit a subscriber's buffer several times over, or a fast client overflows too.
        self._batch_size = max(1, min(500, max_events // 4))
        self.position = 0
        self.overflows = 0
        self._task: asyncio.Task[None] | None = None
        self._catch_up = CatchUpReader(event_log, to_item=to_item, max_pending_events=max_events)

    @property
    def following(self) -> bool:
        """True while the shared follower runs."""
        return self._task is not None and not self._task.done()

    @property
    def subscribers(self) -> int:
        """Number of connected live clients."""
        return len(self._subs)

    async def start(self) -> None:
        """Start following after the current end of the log."""
        info = await self._log.info()
        self.position = info.last_seq
        self._task = asyncio.create_task(self._follow(), name="live-hub")
        self._task.add_done_callback(self._on_follower_done)

    def _on_follower_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("live follower died", exc_info=task.exception())
            for sub in list(self._subs):
                sub.closed_reason = "live stream unavailable"
                sub._wake.set()

    async def stop(self) -> None:
        """Stop following and wake every subscriber."""
        await self._catch_up.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sub in list(self._subs):
            sub.closed_reason = "server shutting down"
            sub._wake.set()

    @contextlib.contextmanager
    def subscribe(self, filter: LiveFilter, *, after_seq: int | None) -> Iterator[Subscriber]:
        """Register a subscriber from ``after_seq`` (None: from now) for the ``with`` block."""
        start = self.position if after_seq is None else max(0, after_seq)
        sub = Subscriber(
            hub=self,
            filter=filter,
            after_seq=start,
            live_from=self.position,
            max_events=self._max_events,
        )
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)

    async def history(
        self, after_seq: int, upto_seq: int, filter: LiveFilter
    ) -> AsyncIterator[list[LiveItem]]:
        """Matching items in ``(after_seq, upto_seq]``, from memory when it still holds them, else
        from the shared catch-up reader of the log."""
        if self._history and self._history[0].seq <= after_seq + 1:
            items = [
                i for i in self._history if after_seq < i.seq <= upto_seq and filter.matches(i)
            ]
            for k in range(0, len(items), 500):
                yield items[k : k + 500]
            return
        async for items in self._catch_up.read(after_seq, upto_seq, filter):
            yield items

    def _fan_out(self, items: list[LiveItem]) -> None:
        # Filter and encode once per distinct filter, not once per subscriber (500 clients, few filters).
        chunks: dict[LiveFilter, Chunk | None] = {}
        last = items[-1].seq
        for sub in list(self._subs):
            flt = sub.filter
            if flt not in chunks:
                matched = [i for i in items if flt.matches(i)]
                chunks[flt] = Chunk(matched) if matched else None
            sub.offer(chunks[flt], last)

    async def _follow(self) -> None:
        delay = 0.5
        while True:
            try:
                async for batch in self._log.follow(
                    self.position + 1, batch_size=self._batch_size, max_wait_s=self._batch_wait_s
                ):
                    if not batch:
                        continue
                    items = [to_item(r) for r in batch]
                    self.position = items[-1].seq
                    self._history.extend(items)
                    self._fan_out(items)
                    delay = 0.5
            except EventLogError as e:
                log.warning(
                    "live follower interrupted: %s; retrying in %.1fs", type(e).__name__, delay
                )
                await asyncio.sleep(delay)  # capped backoff before re-following
                delay = min(delay * 2, 10.0)
