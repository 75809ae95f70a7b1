"""History backfill of one chat: the last N days, oldest first, throttled, resumable, recorded.

Progress is appended only after the messages it covers were acknowledged (or spooled), so after a
crash the last ``BackfillProgressed`` in the log is a safe resume point. A chat whose backfill the
log records as completed (for this account) is skipped unless forced (``TriggerCrawl``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from ingest.seams import EventSink
from ingest.telegram.convert import snapshot_of
from ingest.telegram.gateway import Gateway, PeerRef, TLMessage
from ingest.telegram.known import MessageIndex, reconcile
from ingest.telegram.logstate import BackfillState, LogState
from ingest.telegram.ratelimit import RateLimiter, Sleep
from schemas import ids
from schemas.events import (
    BackfillCompleted,
    BackfillProgressed,
    BackfillStarted,
    Event,
    MessagePosted,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # messages.getHistory returns at most 100 per request (core.telegram.org/method/messages.getHistory)
MediaHook = Callable[[MessagePosted, TLMessage], None]


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What one backfill run did."""

    chat_id: int
    fetched: int
    appended: int
    last_message_id: int | None
    resumed_after: int | None


class Backfiller:
    """Runs backfills for one account (one at a time; the worker queues them)."""

    def __init__(
        self,
        *,
        account: str,
        gateway: Gateway,
        limiter: RateLimiter,
        resolve: Callable[[int], Awaitable[PeerRef]],
        sink: EventSink,
        state: LogState,
        index: MessageIndex,
        days: float = 14.0,
        batch: int = 200,
        pause_s: float = 1.5,
        sleep: Sleep,
        on_posted: MediaHook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._account = account
        self._gateway = gateway
        self._limiter = limiter
        self._resolve = resolve
        self._sink = sink
        self._state = state
        self._index = index
        self._days = days
        self._batch = batch
        self._pause_s = pause_s
        self._sleep = sleep
        self._on_posted = on_posted
        self._clock = clock

    def is_done(self, chat_id: int) -> bool:
        """True when the log records a completed backfill of ``chat_id`` for this account."""
        bf = self._state.chat(chat_id).backfill
        return bf is not None and bf.completed

    async def run(self, chat_id: int, *, force: bool = False) -> BackfillResult | None:
        """Backfill ``chat_id`` (resuming an unfinished run); None when skipped as already complete."""
        st = self._state.chat(chat_id)
        bf = st.backfill
        if bf is not None and bf.completed and not force:
            log.info("backfill %s %s: already completed, skipped", self._account, chat_id)
            return None
        now = self._clock()
        if bf is None or bf.completed:
            bf = BackfillState(since=(now - timedelta(days=self._days)).replace(microsecond=0))
        resume_after = bf.last_message_id
        peer = await self._resolve(chat_id)
        estimate = await self._estimate(peer, chat_id, bf.since)
        await self._sink.submit_many(
            [
                BackfillStarted(
                    event_id=ids.backfill_started_id(
                        self._account, chat_id, bf.since, resume_after
                    ),
                    account=self._account,
                    observed_at=now,
                    source="backfill",
                    chat_id=chat_id,
                    since=bf.since,
                    resume_after_message_id=resume_after,
                    estimated_total=estimate,
                )
            ]
        )
        st.backfill = bf
        log.info(
            "backfill %s %s: since %s, resuming after %s",
            self._account,
            chat_id,
            bf.since,
            resume_after,
        )
        appended = await self._pages(peer, chat_id, bf, estimate)
        done = BackfillCompleted(
            event_id=ids.backfill_completed_id(self._account, chat_id, bf.since),
            account=self._account,
            observed_at=self._clock(),
            source="backfill",
            chat_id=chat_id,
            since=bf.since,
            fetched=bf.fetched,
            last_message_id=bf.last_message_id,
        )
        await self._sink.submit_many([done])
        bf.completed = True
        log.info("backfill %s %s: completed, %d fetched", self._account, chat_id, bf.fetched)
        return BackfillResult(
            chat_id=chat_id,
            fetched=bf.fetched,
            appended=appended,
            last_message_id=bf.last_message_id,
            resumed_after=resume_after,
        )

    async def _estimate(self, peer: PeerRef, chat_id: int, since: datetime) -> int | None:
        # Message ids grow by one per message in a channel: newest id − last id before ``since`` is
        # the window's size (an upper bound in basic groups, whose ids are per account).
        newest = await self._limiter.call(
            "messages.getHistory",
            partial(self._gateway.get_history, peer, limit=1),
            chat_id=chat_id,
            source="backfill",
        )
        if not newest.messages:
            return 0
        before = await self._limiter.call(
            "messages.getHistory",
            partial(self._gateway.get_history, peer, limit=1, offset_date=since),
            chat_id=chat_id,
            source="backfill",
        )
        floor: int = before.messages[0].id if before.messages else 0
        top: int = newest.messages[0].id
        return max(0, top - floor)

    async def _pages(
        self, peer: PeerRef, chat_id: int, bf: BackfillState, estimate: int | None
    ) -> int:
        appended = 0
        since_pause = 0
        while True:
            offset_id = bf.last_message_id or 0
            offset_date = bf.since if bf.last_message_id is None else None
            page = await self._limiter.call(
                "messages.getHistory",
                partial(
                    self._gateway.get_history,
                    peer,
                    limit=PAGE_SIZE,
                    offset_id=offset_id,
                    offset_date=offset_date,
                    reverse=True,
                ),
                chat_id=chat_id,
                source="backfill",
            )
            messages = sorted(page.messages, key=lambda m: m.id)
            if not messages:
                break
            observed = self._clock()
            events: list[Event] = []
            for m in messages:
                new = reconcile(
                    self._index,
                    account=self._account,
                    chat_id=chat_id,
                    snap=snapshot_of(m, page.entities, self_id=self._gateway.self_id()),
                    source="backfill",
                    observed_at=observed,
                )
                events.extend(new)
                if self._on_posted is not None:
                    for ev in new:
                        if isinstance(ev, MessagePosted):
                            self._on_posted(ev, m)
            if events:
                await self._sink.submit_many(events)
            appended += len(events)
            bf.fetched += len(messages)
            bf.last_message_id = messages[-1].id
            since_pause += len(messages)
            if since_pause >= self._batch:
                await self._progress(chat_id, bf, estimate)
                await self._sleep(self._pause_s)
                since_pause = 0
            if len(page.messages) < PAGE_SIZE:
                break
        if since_pause and bf.last_message_id is not None:
            await self._progress(chat_id, bf, estimate)
        return appended

    async def _progress(self, chat_id: int, bf: BackfillState, estimate: int | None) -> None:
        assert bf.last_message_id is not None
        await self._sink.submit_many(
            [
                BackfillProgressed(
                    event_id=ids.backfill_progress_id(
                        self._account, chat_id, bf.since, bf.last_message_id
                    ),
                    account=self._account,
                    observed_at=self._clock(),
                    source="backfill",
                    chat_id=chat_id,
                    since=bf.since,
                    fetched=bf.fetched,
                    last_message_id=bf.last_message_id,
                    estimated_total=estimate,
                )
            ]
        )
