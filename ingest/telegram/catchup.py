"""Catch-up after downtime of any length, from Telegram's update state kept in Postgres.

On every start and reconnect (and every ``interval`` while connected, which keeps the stored state
recent) the worker asks Telegram what happened since the stored state: ``updates.getDifference``
for the account, ``updates.getChannelDifference`` for each watched channel. What comes back goes
through the live conversion with ``source="catchup"``, checked against what the log holds, so an
event the log already has is not appended again. The state moves only after the events it covers
are durable (``submit_many`` returns once they are acked or spooled): a crash re-fetches.

When Telegram answers that the difference is too long, the chat's history is read forward from the
newest message id the log holds for it (every record of the chat is read back first, so nothing
held is appended twice), page by page, each page durable before the next: no time cap, resumable,
throttled like a backfill. Each chat that gained anything gets a ``CatchUpCompleted`` event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Final

from telethon.tl import types

from eventlog import EventLog, Record
from ingest.seams import EventSink
from ingest.telegram.gateway import ChannelDifference, Gateway, PeerRef, TLMessage
from ingest.telegram.handlers import events_from_update
from ingest.telegram.known import MessageIndex, reconcile
from ingest.telegram.logstate import LogState
from ingest.telegram.ratelimit import RateLimiter, Sleep
from ingest.telegram.updatestate import UpdateState, UpdateStateStore
from schemas import ids
from schemas.events import (
    CatchUpCompleted,
    Event,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    ReactionsUpdated,
)

log = logging.getLogger(__name__)

Resolve = Callable[[int], Awaitable[PeerRef]]

# Telethon's message box asks for at most 100 messages per getChannelDifference for user accounts.
CHANNEL_DIFF_LIMIT: Final = 100
PAGE_SIZE: Final = 100
_CLOCK_SKEW: Final = timedelta(hours=1)  # Telegram's dates vs the log's append times


@dataclass(slots=True)
class ChatTally:
    """What one catch-up pass added for one chat."""

    low: int | None = None
    high: int | None = None
    new: int = 0
    edited: int = 0
    deleted: int = 0
    too_long: bool = False

    def count(self, event: Event, message_id: int) -> None:
        """Count one appended event."""
        self.low = message_id if self.low is None else min(self.low, message_id)
        self.high = message_id if self.high is None else max(self.high, message_id)
        if isinstance(event, MessagePosted):
            self.new += 1
        elif isinstance(event, MessageEdited):
            self.edited += 1
        elif isinstance(event, MessageDeleted):
            self.deleted += 1


@dataclass(frozen=True, slots=True)
class CatchUpResult:
    """Totals of one pass."""

    new: int
    edited: int
    deleted: int
    chats: int


def _message_id(event: Event) -> int | None:
    if isinstance(event, MessagePosted | MessageEdited):
        return event.message.message_id
    if isinstance(event, MessageDeleted | ReactionsUpdated):
        return event.message_id
    return None


def _as_update(message: TLMessage) -> object:
    if isinstance(message.peer_id, types.PeerChannel):
        return types.UpdateNewChannelMessage(message=message, pts=0, pts_count=0)
    return types.UpdateNewMessage(message=message, pts=0, pts_count=0)


class CatchUp:
    """One account's catch-up passes (see the module docstring)."""

    def __init__(
        self,
        *,
        account: str,
        gateway: Gateway,
        limiter: RateLimiter,
        store: UpdateStateStore,
        sink: EventSink,
        log_reader: EventLog,
        state: LogState,
        index: MessageIndex,
        resolve: Resolve,
        clock: Callable[[], datetime],
        sleep: Sleep,
        pause_s: float = 1.0,
    ) -> None:
        self._account = account
        self._gateway = gateway
        self._limiter = limiter
        self._store = store
        self._sink = sink
        self._log = log_reader
        self._state = state
        self._index = index
        self._resolve = resolve
        self._clock = clock
        self._sleep = sleep
        self._pause_s = pause_s
        self._indexed_since: datetime | None = None

    async def run(self) -> CatchUpResult:
        """One pass over the account and every watched channel."""
        stored = await self._store.load(self._account)
        tallies: dict[int, ChatTally] = {}
        if stored.common is None:  # first start: history is the backfill's job
            now = await self._limiter.call("updates.getState", self._gateway.get_state)
            await self._store.save_common(self._account, now)
        else:
            await self._index_since(stored.common.date)
            await self._account_difference(stored.common, tallies)
        for chat_id in self._state.watched():
            if ids.is_channel_id(chat_id):
                await self._channel_difference(chat_id, stored.channels.get(chat_id), tallies)
        await self._report(tallies)
        return CatchUpResult(
            new=sum(t.new for t in tallies.values()),
            edited=sum(t.edited for t in tallies.values()),
            deleted=sum(t.deleted for t in tallies.values()),
            chats=len(tallies),
        )

    # --- the difference paths --------------------------------------------------------------------

    async def _account_difference(self, state: UpdateState, tallies: dict[int, ChatTally]) -> None:
        while True:
            diff = await self._limiter.call(
                "updates.getDifference",
                partial(self._gateway.get_difference, state),
                source="catchup",
            )
            if diff.too_long:
                for chat_id in self._state.watched():
                    if not ids.is_channel_id(chat_id):  # channels have their own difference
                        await self._history_forward(chat_id, tallies)
            else:
                updates = [_as_update(m) for m in diff.new_messages] + diff.other_updates
                await self._append(self._convert(updates, diff.entities), tallies)
            state = diff.state
            await self._store.save_common(self._account, state)  # after the events are durable
            if diff.final and not diff.too_long:
                return

    async def _channel_difference(
        self, chat_id: int, pts: int | None, tallies: dict[int, ChatTally]
    ) -> None:
        peer = await self._resolve(chat_id)
        if pts is None:
            # No pts stored for this channel yet (watched since the last pass): what the log lacks
            # is read from the history, then the channel's current pts is learnt.
            await self._history_forward(chat_id, tallies)
            await self._learn_pts(chat_id, peer)
            return
        current = pts
        while True:
            diff = await self._channel_page(chat_id, peer, current)
            if diff.too_long:
                await self._history_forward(chat_id, tallies)
            else:
                updates = [_as_update(m) for m in diff.new_messages] + diff.other_updates
                await self._append(self._convert(updates, diff.entities), tallies)
            current = diff.pts
            await self._store.save_channel(self._account, chat_id, current)  # after durability
            if diff.final or diff.too_long:
                return

    async def _learn_pts(self, chat_id: int, peer: PeerRef) -> None:
        current = 1
        while True:  # the content is skipped: the history read above covered it
            diff = await self._channel_page(chat_id, peer, current)
            current = diff.pts
            if diff.final or diff.too_long:
                await self._store.save_channel(self._account, chat_id, current)
                return

    async def _channel_page(self, chat_id: int, peer: PeerRef, pts: int) -> ChannelDifference:
        return await self._limiter.call(
            "updates.getChannelDifference",
            partial(self._gateway.get_channel_difference, peer, pts=pts, limit=CHANNEL_DIFF_LIMIT),
            chat_id=chat_id,
            source="catchup",
        )

    # --- the too-long fallback ---------------------------------------------------------------------

    async def _history_forward(self, chat_id: int, tallies: dict[int, ChatTally]) -> None:
        after = await self._newest_in_log(chat_id)
        if after is None:
            return  # the log holds nothing of this chat: its backfill reads the history
        tallies.setdefault(chat_id, ChatTally()).too_long = True
        peer = await self._resolve(chat_id)
        log.info(
            "catch-up %s %s: too long; reading history after %d", self._account, chat_id, after
        )
        while True:
            page = await self._limiter.call(
                "messages.getHistory",
                partial(
                    self._gateway.get_history, peer, limit=PAGE_SIZE, offset_id=after, reverse=True
                ),
                chat_id=chat_id,
                source="catchup",
            )
            messages = sorted(page.messages, key=lambda m: m.id)
            if not messages:
                return
            updates = [_as_update(m) for m in messages]
            await self._append(self._convert(updates, page.entities), tallies)
            after = messages[-1].id
            await self._sleep(self._pause_s)  # throttled like a backfill

    async def _newest_in_log(self, chat_id: int) -> int | None:
        newest: int | None = None
        async for batch in self._log.read(1, subjects=[f"tg.msg.{chat_id}"]):
            for record in batch:
                if not isinstance(record, Record) or record.event.account != self._account:
                    continue
                self._index.observe(record.event)
                event = record.event
                if isinstance(event, MessagePosted | MessageEdited):
                    mid = event.message.message_id
                    newest = mid if newest is None else max(newest, mid)
        return newest

    async def _index_since(self, since: datetime) -> None:
        """Make the index hold every message fact appended since ``since`` (the stored state's date),
        so that what the difference returns is compared with everything the log may already hold."""
        start_at = since - _CLOCK_SKEW
        if self._indexed_since is not None and self._indexed_since <= start_at:
            return
        subjects = [f"tg.msg.{c}" for c in self._state.watched()]
        subjects.append(f"tg.msg.nochat.{self._account}")
        start = await self._log.first_seq_at(start_at)
        async for batch in self._log.read(start, subjects=subjects):
            for record in batch:
                if isinstance(record, Record):
                    self._index.observe(record.event)
        self._indexed_since = start_at

    # --- conversion and appending ----------------------------------------------------------------

    def _convert(self, updates: Sequence[object], names: dict[int, object]) -> list[Event]:
        observed = self._clock()
        out: list[Event] = []
        for update in updates:
            for event in events_from_update(
                update,
                account=self._account,
                observed_at=observed,
                names=names,
                chat_for_deleted=self._index.chat_for_deleted,
                source="catchup",
            ):
                if event.chat_id is not None and not self._state.chat(event.chat_id).watching:
                    continue
                out.extend(self._unheld(event))
        return out

    def _unheld(self, event: Event) -> list[Event]:
        """What of ``event`` the log does not hold yet."""
        chat_id = event.chat_id
        if isinstance(event, MessagePosted | MessageEdited) and chat_id is not None:
            if self._index.get(chat_id, event.message.message_id) is None:
                return [event]  # never seen: a post, or an edit of a message older than the index
            return reconcile(
                self._index,
                account=self._account,
                chat_id=chat_id,
                snap=event.message,
                source="catchup",
                observed_at=event.observed_at,
            )
        if isinstance(event, MessageDeleted):
            if chat_id is not None and self._index.was_deleted(chat_id, event.message_id):
                return []
            return [event]
        if isinstance(event, ReactionsUpdated) and chat_id is not None:
            known = self._index.get(chat_id, event.message_id)
            return [] if known is not None and known.reactions_id == event.event_id else [event]
        return [event]

    async def _append(self, events: list[Event], tallies: dict[int, ChatTally]) -> None:
        if not events:
            return
        await self._sink.submit_many(events)  # returns once acked by the log or spooled
        for event in events:
            mid = _message_id(event)
            if event.chat_id is not None and mid is not None:
                tallies.setdefault(event.chat_id, ChatTally()).count(event, mid)

    async def _report(self, tallies: dict[int, ChatTally]) -> None:
        now = self._clock()
        done = [
            CatchUpCompleted(
                event_id=ids.occurrence_id("catchup"),
                account=self._account,
                observed_at=now,
                source="catchup",
                chat_id=chat_id,
                from_message_id=t.low,
                to_message_id=t.high,
                new=t.new,
                edited=t.edited,
                deleted=t.deleted,
                too_long=t.too_long,
            )
            for chat_id, t in sorted(tallies.items())
        ]
        if done:
            await self._sink.submit_many(done)
        for event in done:
            log.info(
                "catch-up %s %s: %d new, %d edited, %d deleted%s",
                self._account,
                event.chat_id,
                event.new,
                event.edited,
                event.deleted,
                " (history read: difference too long)" if event.too_long else "",
            )
