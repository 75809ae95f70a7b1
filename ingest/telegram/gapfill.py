"""Gap-fill: re-read the last hour of a chat and append what the log lacks.

Live updates silently miss messages (tdlib#366, Telethon#4345), so every chat is re-read on a
schedule: never-seen messages become ``MessagePosted``, newer edits ``MessageEdited`` (both with
the live event ids, so nothing duplicates), and messages the log knows in the window that Telegram
no longer returns become ``MessageDeleted``; then one ``GapFillCompleted`` per pass.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from ingest.errors import IngestError
from ingest.seams import EventSink
from ingest.telegram.backfill import PAGE_SIZE, MediaHook
from ingest.telegram.convert import snapshot_of, utc
from ingest.telegram.gateway import Gateway, PeerRef, TLMessage
from ingest.telegram.handlers import deleted
from ingest.telegram.known import MessageIndex, reconcile
from ingest.telegram.ratelimit import RateLimiter, Sleep
from schemas import ids
from schemas.events import Event, GapFillCompleted, MessageEdited, MessagePosted

log = logging.getLogger(__name__)


class GapFiller:
    """One gap-fill pass over one chat at a time."""

    def __init__(
        self,
        *,
        account: str,
        gateway: Gateway,
        limiter: RateLimiter,
        resolve: Callable[[int], Awaitable[PeerRef]],
        sink: EventSink,
        index: MessageIndex,
        window_s: float = 3600.0,
        max_messages: int = 500,
        on_posted: MediaHook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._account = account
        self._gateway = gateway
        self._limiter = limiter
        self._resolve = resolve
        self._sink = sink
        self._index = index
        self._window = timedelta(seconds=window_s)
        self._max = max_messages
        self._on_posted = on_posted
        self._clock = clock

    async def run(self, chat_id: int) -> GapFillCompleted:
        """Re-read ``chat_id``'s window, append the differences, and return the pass result."""
        end = self._clock().replace(microsecond=0)
        start = end - self._window
        peer = await self._resolve(chat_id)
        fetched, entities, capped = await self._fetch(peer, chat_id, start)
        events: list[Event] = []
        for m in fetched:
            new = reconcile(
                self._index,
                account=self._account,
                chat_id=chat_id,
                snap=snapshot_of(m, entities, self_id=self._gateway.self_id()),
                source="gapfill",
                observed_at=end,
            )
            events.extend(new)
            if self._on_posted is not None:
                for ev in new:
                    if isinstance(ev, MessagePosted):
                        self._on_posted(ev, m)
        seen = {m.id for m in fetched}
        floor = min(seen) if capped and seen else None
        missing = sorted(
            mid
            for mid, _ in self._index.in_window(chat_id, start, end)
            if mid not in seen and (floor is None or mid >= floor)
        )
        gone = await self._confirm_deleted(peer, chat_id, missing)
        events.extend(
            deleted(
                account=self._account,
                chat_id=chat_id,
                message_id=mid,
                source="gapfill",
                observed_at=end,
            )
            for mid in gone
        )
        result = GapFillCompleted(
            event_id=ids.gapfill_id(self._account, chat_id, start, end),
            account=self._account,
            observed_at=end,
            source="gapfill",
            chat_id=chat_id,
            window_start=start,
            window_end=end,
            fetched=len(fetched),
            new=sum(isinstance(e, MessagePosted) for e in events),
            edited=sum(isinstance(e, MessageEdited) for e in events),
            deleted=len(gone),
        )
        await self._sink.submit_many([*events, result])
        log.info(
            "gap-fill %s %s: fetched %d, new %d, edited %d, deleted %d",
            self._account,
            chat_id,
            result.fetched,
            result.new,
            result.edited,
            result.deleted,
        )
        return result

    async def _confirm_deleted(self, peer: PeerRef, chat_id: int, missing: list[int]) -> list[int]:
        # A message absent from the history page is asked for by id before it is called deleted,
        # so a pagination quirk never turns into a false deletion.
        gone: list[int] = []
        for i in range(0, len(missing), PAGE_SIZE):
            chunk = missing[i : i + PAGE_SIZE]
            found = await self._limiter.call(
                "messages.getMessages",
                partial(self._gateway.get_messages, peer, chunk),
                chat_id=chat_id,
                source="gapfill",
            )
            gone.extend(mid for mid, msg in zip(chunk, found, strict=True) if msg is None)
        return gone

    async def _fetch(
        self, peer: PeerRef, chat_id: int, start: datetime
    ) -> tuple[list[TLMessage], dict[int, object], bool]:
        out: list[TLMessage] = []
        entities: dict[int, object] = {}
        offset_id = 0
        while len(out) < self._max:
            limit = min(PAGE_SIZE, self._max - len(out))
            page = await self._limiter.call(
                "messages.getHistory",
                partial(self._gateway.get_history, peer, limit=limit, offset_id=offset_id),
                chat_id=chat_id,
                source="gapfill",
            )
            entities.update(page.entities)
            in_window = [m for m in page.messages if (utc(m.date) or start) >= start]
            out.extend(in_window)
            if (
                len(in_window) < len(page.messages)
                or len(page.messages) < limit
                or not page.messages
            ):
                return out, entities, False
            offset_id = min(m.id for m in page.messages)
        return out, entities, True


async def stagger_forever(
    *,
    chats: Callable[[], list[int]],
    run_one: Callable[[int], Awaitable[object]],
    interval_s: float,
    sleep: Sleep,
    name: str,
) -> None:
    """Run ``run_one`` for every chat once per ``interval_s``, spread evenly across the interval."""
    while True:
        current = sorted(chats())
        if not current:
            await sleep(interval_s)
            continue
        step = interval_s / len(current)
        for chat_id in current:
            await sleep(step)
            if chat_id not in chats():
                continue
            try:
                await run_one(chat_id)
            except (
                IngestError
            ) as e:  # one chat failing must not stop the others; the next round retries
                log.warning("%s of %s failed: %s", name, chat_id, e)
