"""What this account already put in the log about recent messages (per chat), kept in memory.

Fed from the log at start (``ingest.telegram.logstate``) and from every event the worker submits
(``ObservingSink``). Gap-fill compares Telegram's answer with it; live deletes without a chat id
are resolved with it (basic-group/private message ids are unique per account).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from ingest.seams import EventSink
from schemas import ids
from schemas.events import (
    CountersUpdated,
    Event,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    MessageSnapshot,
    ReactionsUpdated,
    Source,
    snapshot_time,
)


@dataclass(slots=True)
class KnownMessage:
    """The newest state of one message as the log knows it."""

    date: datetime
    edit_date: datetime | None
    time: tuple[datetime, datetime]  # schemas.events.snapshot_time of that state
    digest: str
    reactions_id: str
    deleted: bool = False
    counters: tuple[int | None, int | None, int | None] = (None, None, None)


class MessageIndex:
    """Recent messages per chat plus an account-wide map message id → chat for non-channel chats."""

    def __init__(self, *, account: str) -> None:
        self._account = account
        self._chats: dict[int, dict[int, KnownMessage]] = {}
        self._nonchannel: dict[int, tuple[int, datetime]] = {}  # message id → (chat, date)
        self._deleted: set[tuple[int, int]] = set()  # deletes seen of messages not (yet) known

    def observe(self, event: Event) -> None:
        """Fold one event (ours or read back from the log) into the index."""
        if event.account != self._account:
            return  # another account numbers its non-channel messages on its own
        if event.chat_id is None:
            if isinstance(event, MessageDeleted):
                hit = self._nonchannel.get(event.message_id)
                if hit is not None:
                    self._mark_deleted(hit[0], event.message_id)
            return
        chat_id = event.chat_id
        if isinstance(event, (MessagePosted, MessageEdited)):
            self._fold_snapshot(chat_id, event.message, edited=isinstance(event, MessageEdited))
        elif isinstance(event, MessageDeleted):
            self._mark_deleted(chat_id, event.message_id)
        elif isinstance(event, CountersUpdated):
            known = self._chats.get(chat_id, {}).get(event.message_id)
            if known is not None:
                views, forwards, replies = known.counters
                known.counters = (
                    views if event.views is None else event.views,
                    forwards if event.forwards is None else event.forwards,
                    replies if event.replies is None else event.replies,
                )
        elif isinstance(event, ReactionsUpdated):
            known = self._chats.get(chat_id, {}).get(event.message_id)
            if known is not None:
                known.reactions_id = ids.reactions_id(
                    chat_id, event.message_id, event.reactions, account=self._account
                )

    def _fold_snapshot(self, chat_id: int, snap: MessageSnapshot, *, edited: bool) -> None:
        chat = self._chats.setdefault(chat_id, {})
        if not ids.is_channel_id(chat_id):
            self._nonchannel[snap.message_id] = (chat_id, snap.date)
        known = chat.get(snap.message_id)
        if known is not None and known.time > snapshot_time(snap):
            return  # an older snapshot (e.g. a backfill page) never replaces a newer one
        chat[snap.message_id] = KnownMessage(
            date=snap.date,
            edit_date=snap.edit_date,
            time=snapshot_time(snap),
            digest=ids.content_digest(snap),
            reactions_id=ids.reactions_id(
                chat_id, snap.message_id, snap.reactions, account=self._account
            ),
            deleted=known.deleted if known is not None else False,
            counters=(snap.views, snap.forwards, snap.replies),
        )

    def _mark_deleted(self, chat_id: int, message_id: int) -> None:
        known = self._chats.get(chat_id, {}).get(message_id)
        if known is not None:
            known.deleted = True
        else:
            self._deleted.add((chat_id, message_id))

    def was_deleted(self, chat_id: int, message_id: int) -> bool:
        """True if a delete of this message is known (whether or not the message itself is)."""
        known = self.get(chat_id, message_id)
        return (known is not None and known.deleted) or (chat_id, message_id) in self._deleted

    def newest_id(self, chat_id: int) -> int | None:
        """The highest message id known in ``chat_id``."""
        return max(self._chats.get(chat_id, {}), default=None)

    def get(self, chat_id: int, message_id: int) -> KnownMessage | None:
        """The known state of a message, or None."""
        return self._chats.get(chat_id, {}).get(message_id)

    def chat_for_deleted(self, message_id: int) -> int | None:
        """The non-channel chat a bare message id belongs to, if this account has seen it."""
        hit = self._nonchannel.get(message_id)
        return None if hit is None else hit[0]

    def in_window(
        self, chat_id: int, start: datetime, end: datetime
    ) -> Iterator[tuple[int, KnownMessage]]:
        """Known, not deleted messages of ``chat_id`` dated within ``[start, end]``."""
        for message_id, known in self._chats.get(chat_id, {}).items():
            if not known.deleted and start <= known.date <= end:
                yield message_id, known

    def prune(self, *, details_before: datetime, map_before: datetime | None = None) -> int:
        """Forget message details dated before ``details_before`` (gap-fill needs only its window) and
        delete-map entries dated before ``map_before`` (default: the same); returns details dropped."""
        dropped = 0
        for chat in self._chats.values():
            old = [mid for mid, k in chat.items() if k.date < details_before]
            for mid in old:
                del chat[mid]
            dropped += len(old)
        cutoff = details_before if map_before is None else map_before
        for mid in [m for m, (_, date) in self._nonchannel.items() if date < cutoff]:
            del self._nonchannel[mid]
        return dropped

    def __len__(self) -> int:
        return sum(len(c) for c in self._chats.values())


class ObservingSink:
    """An ``EventSink`` that folds every event into a ``MessageIndex`` and forwards it."""

    def __init__(self, inner: EventSink, index: MessageIndex) -> None:
        self._inner = inner
        self._index = index

    def submit(self, event: Event) -> None:
        """Index, then enqueue (non-blocking)."""
        self._index.observe(event)
        self._inner.submit(event)

    async def submit_many(self, events: Sequence[Event]) -> None:
        """Index, then enqueue and wait for acks/spooling."""
        for event in events:
            self._index.observe(event)
        await self._inner.submit_many(events)

    @property
    def intake_paused(self) -> bool:
        """The inner sink's pause."""
        return self._inner.intake_paused


def reconcile(
    index: MessageIndex,
    *,
    account: str,
    chat_id: int,
    snap: MessageSnapshot,
    source: Source,
    observed_at: datetime,
) -> list[Event]:
    """What a fetched snapshot adds to the log: a post if never seen, an edit if newer, else nothing.

    A reaction summary that differs from the known one becomes ``ReactionsUpdated``, engagement
    counters that differ become ``CountersUpdated`` (a re-read refreshes them). Event ids are the
    live ones, so a fact already in the log is never stored twice.
    """
    known = index.get(chat_id, snap.message_id)
    if known is None:
        return [
            MessagePosted(
                event_id=ids.posted_id(chat_id, snap.message_id, account=account),
                account=account,
                observed_at=observed_at,
                source=source,
                chat_id=chat_id,
                message=snap,
            )
        ]
    out: list[Event] = []
    fetched_edit = snap.edit_date or snap.date
    known_edit = known.edit_date or known.date
    if fetched_edit > known_edit or (
        fetched_edit == known_edit and ids.content_digest(snap) != known.digest
    ):
        out.append(
            MessageEdited(
                event_id=ids.edited_id(chat_id, snap, account=account),
                account=account,
                observed_at=observed_at,
                source=source,
                chat_id=chat_id,
                message=snap,
            )
        )
    elif (
        reactions_id := ids.reactions_id(chat_id, snap.message_id, snap.reactions, account=account)
    ) != known.reactions_id:
        out.append(
            ReactionsUpdated(
                event_id=reactions_id,
                account=account,
                observed_at=observed_at,
                source=source,
                chat_id=chat_id,
                message_id=snap.message_id,
                reactions=snap.reactions,
            )
        )
    counters = (snap.views, snap.forwards, snap.replies)
    if not out or not isinstance(out[0], MessageEdited):
        if counters != (None, None, None) and counters != known.counters:
            views, forwards, replies = counters
            out.append(
                CountersUpdated(
                    event_id=ids.counters_id(
                        chat_id,
                        snap.message_id,
                        views=views,
                        forwards=forwards,
                        replies=replies,
                        account=account,
                    ),
                    account=account,
                    observed_at=observed_at,
                    source=source,
                    chat_id=chat_id,
                    message_id=snap.message_id,
                    views=views,
                    forwards=forwards,
                    replies=replies,
                )
            )
    return out
