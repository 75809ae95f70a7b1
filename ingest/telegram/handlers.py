"""Live update handling: pure conversion of raw Telethon updates to events, then ``sink.submit``.

Handlers never wait on the network: names come from what Telethon attached to the update
(``update._entities``) and from the entity cache's memory; a delete without a chat id is resolved
from the account's ``MessageIndex`` or recorded with ``chat_id=None`` for the projector.

Telegram sends most private-chat and small basic-group messages as *short* updates
(``UpdateShortMessage``, ``UpdateShortChatMessage``) that carry the message's fields inline; they
become the same full ``Message`` Telethon's own ``events.NewMessage`` builds, so they are recorded
live like any other message. An outgoing message without ``from_id`` is the account's own.
``UpdateShortSentMessage`` only answers a send request of ours (Telethon never dispatches it as an
update): it carries no peer and no text, so ``sent_message`` completes it from the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from telethon.tl import types

from ingest.failure_events import failure_event
from ingest.seams import EventSink
from ingest.telegram.convert import chat_id_of, peer_id, reactions_of, snapshot_of
from ingest.telegram.counters import CounterCoalescer, Counts
from schemas import ids
from schemas.events import (
    CountersUpdated,
    Event,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    MessageSnapshot,
    ReactionCount,
    ReactionsUpdated,
    Source,
)

log = logging.getLogger(__name__)

ChatForDeleted = Callable[[int], int | None]
SelfId = Callable[[], int | None]

_NEW = (types.UpdateNewMessage, types.UpdateNewChannelMessage)
_EDIT = (types.UpdateEditMessage, types.UpdateEditChannelMessage)


def posted(
    *, account: str, chat_id: int, snap: MessageSnapshot, source: Source, observed_at: datetime
) -> MessagePosted:
    """The ``MessagePosted`` fact of a snapshot (same id whoever observed it)."""
    return MessagePosted(
        event_id=ids.posted_id(chat_id, snap.message_id, account=account),
        account=account,
        observed_at=observed_at,
        source=source,
        chat_id=chat_id,
        message=snap,
    )


def edited(
    *, account: str, chat_id: int, snap: MessageSnapshot, source: Source, observed_at: datetime
) -> MessageEdited:
    """The ``MessageEdited`` fact of a snapshot."""
    return MessageEdited(
        event_id=ids.edited_id(chat_id, snap, account=account),
        account=account,
        observed_at=observed_at,
        source=source,
        chat_id=chat_id,
        message=snap,
    )


def deleted(
    *, account: str, chat_id: int | None, message_id: int, source: Source, observed_at: datetime
) -> MessageDeleted:
    """The ``MessageDeleted`` fact (``chat_id`` None when unknown)."""
    return MessageDeleted(
        event_id=ids.deleted_id(account=account, chat_id=chat_id, message_id=message_id),
        account=account,
        observed_at=observed_at,
        source=source,
        chat_id=chat_id,
        message_id=message_id,
    )


def reactions_updated(
    *,
    account: str,
    chat_id: int,
    message_id: int,
    reactions: tuple[ReactionCount, ...],
    source: Source,
    observed_at: datetime,
) -> ReactionsUpdated:
    """The ``ReactionsUpdated`` fact."""
    return ReactionsUpdated(
        event_id=ids.reactions_id(chat_id, message_id, reactions, account=account),
        account=account,
        observed_at=observed_at,
        source=source,
        chat_id=chat_id,
        message_id=message_id,
        reactions=reactions,
    )


def counters_updated(
    *,
    account: str,
    chat_id: int,
    message_id: int,
    counts: Counts,
    source: Source,
    observed_at: datetime,
) -> CountersUpdated:
    """The ``CountersUpdated`` fact (same counts, same id, whoever re-reads them)."""
    return CountersUpdated(
        event_id=ids.counters_id(
            chat_id,
            message_id,
            views=counts.views,
            forwards=counts.forwards,
            replies=counts.replies,
            account=account,
        ),
        account=account,
        observed_at=observed_at,
        source=source,
        chat_id=chat_id,
        message_id=message_id,
        views=counts.views,
        forwards=counts.forwards,
        replies=counts.replies,
    )


def short_message(u: types.UpdateShortMessage, self_id: int | None) -> types.Message:
    """Telegram's compact private-chat message update as a full ``Message``."""
    sender = self_id if u.out else u.user_id
    return types.Message(
        id=u.id,
        peer_id=types.PeerUser(u.user_id),
        date=u.date,
        message=u.message,
        out=u.out,
        mentioned=u.mentioned,
        media_unread=u.media_unread,
        silent=u.silent,
        from_id=None if sender is None else types.PeerUser(sender),
        fwd_from=u.fwd_from,
        via_bot_id=u.via_bot_id,
        reply_to=u.reply_to,
        entities=u.entities,
        ttl_period=u.ttl_period,
    )


def sent_message(
    u: types.UpdateShortSentMessage,
    *,
    peer: types.TypePeer,
    text: str,
    reply_to: types.TypeMessageReplyHeader | None = None,
) -> types.Message:
    """The reply to a send request of ours as a full ``Message`` (the peer and text are the request's)."""
    return types.Message(
        id=u.id,
        peer_id=peer,
        date=u.date,
        message=text,
        out=u.out,
        media=u.media,
        entities=u.entities,
        reply_to=reply_to,
        ttl_period=u.ttl_period,
    )


def short_chat_message(u: types.UpdateShortChatMessage) -> types.Message:
    """Telegram's compact basic-group message update as a full ``Message``."""
    return types.Message(
        id=u.id,
        peer_id=types.PeerChat(u.chat_id),
        date=u.date,
        message=u.message,
        out=u.out,
        mentioned=u.mentioned,
        media_unread=u.media_unread,
        silent=u.silent,
        from_id=types.PeerUser(u.from_id),
        fwd_from=u.fwd_from,
        via_bot_id=u.via_bot_id,
        reply_to=u.reply_to,
        entities=u.entities,
        ttl_period=u.ttl_period,
    )


def events_from_update(
    update: object,
    *,
    account: str,
    observed_at: datetime,
    names: Mapping[int, object] | None = None,
    chat_for_deleted: ChatForDeleted = lambda _mid: None,
    self_id: int | None = None,
    source: Source = "live",
) -> list[Event]:
    """Every event a raw update stands for (empty for updates we do not record); ``self_id`` is the
    account's own user id (the sender of its outgoing messages)."""
    names = names if names is not None else getattr(update, "_entities", None) or {}
    if isinstance(update, types.UpdateShortChatMessage):
        update = types.UpdateNewMessage(
            message=short_chat_message(update), pts=update.pts, pts_count=update.pts_count
        )
    elif isinstance(update, types.UpdateShortMessage):
        update = types.UpdateNewMessage(
            message=short_message(update, self_id), pts=update.pts, pts_count=update.pts_count
        )
    if isinstance(update, _NEW + _EDIT):
        message = update.message
        if not isinstance(message, (types.Message, types.MessageService)):
            return []  # MessageEmpty
        chat_id = chat_id_of(message)
        snap = snapshot_of(message, names, self_id=self_id)
        build = posted if isinstance(update, _NEW) else edited
        return [
            build(
                account=account, chat_id=chat_id, snap=snap, source=source, observed_at=observed_at
            )
        ]
    if isinstance(update, types.UpdateDeleteChannelMessages):
        chat_id = peer_id(types.PeerChannel(update.channel_id))
        return [
            deleted(
                account=account,
                chat_id=chat_id,
                message_id=m,
                source=source,
                observed_at=observed_at,
            )
            for m in update.messages
        ]
    if isinstance(update, types.UpdateDeleteMessages):
        return [
            deleted(
                account=account,
                chat_id=chat_for_deleted(m),
                message_id=m,
                source=source,
                observed_at=observed_at,
            )
            for m in update.messages
        ]
    if isinstance(update, types.UpdateChannelMessageViews | types.UpdateChannelMessageForwards):
        counts = (
            Counts(views=update.views)
            if isinstance(update, types.UpdateChannelMessageViews)
            else Counts(forwards=update.forwards)
        )
        return [
            counters_updated(
                account=account,
                chat_id=peer_id(types.PeerChannel(update.channel_id)),
                message_id=update.id,
                counts=counts,
                source="live",
                observed_at=observed_at,
            )
        ]
    if isinstance(update, types.UpdateMessageReactions):
        chat_id = peer_id(update.peer)
        return [
            reactions_updated(
                account=account,
                chat_id=chat_id,
                message_id=update.msg_id,
                reactions=reactions_of(update.reactions),
                source=source,
                observed_at=observed_at,
            )
        ]
    return []


class LiveHandler:
    """The update callback of one account: convert, keep the events of watched chats, submit.

    A conversion error is logged, counted and recorded as ``IngestFailed``; the update loop goes on
    (gap-fill re-reads the message later). Counter changes go through a ``CounterCoalescer``: held
    ones are recorded by a later update or by ``flush_counters`` (the worker calls it on a timer).

    While the sink's intake is paused (a full disk) updates are not converted: memory stays
    bounded, and ``missed`` tells the worker to catch up from Telegram's update state, which moved
    only with durable events, once intake resumes (docs/decisions/013-durability-point.md)."""

    def __init__(
        self,
        *,
        account: str,
        sink: EventSink,
        is_watched: Callable[[int], bool],
        chat_for_deleted: ChatForDeleted,
        on_posted: Callable[[MessagePosted, object], None] | None = None,
        self_id: SelfId = lambda: None,
    ) -> None:
        self._account = account
        self._self_id = self_id
        self._counters = CounterCoalescer()
        self._sink = sink
        self._is_watched = is_watched
        self._chat_for_deleted = chat_for_deleted
        self._on_posted = on_posted
        self.handled = 0
        self.failed = 0
        self.missed = 0  # updates left to catch-up while intake was paused, since the last one

    def flush_counters(self, now: datetime | None = None) -> int:
        """Record the held counter changes whose minute is over; returns how many (none while
        intake is paused: they stay held)."""
        if self._sink.intake_paused:
            return 0
        now = now or datetime.now(UTC)
        due = self._counters.due(now)
        for (chat_id, message_id), counts in due:
            self._sink.submit(
                counters_updated(
                    account=self._account,
                    chat_id=chat_id,
                    message_id=message_id,
                    counts=counts,
                    source="live",
                    observed_at=now,
                )
            )
        return len(due)

    def _coalesced(self, event: CountersUpdated) -> CountersUpdated | None:
        assert event.chat_id is not None
        counts = self._counters.offer(
            (event.chat_id, event.message_id),
            Counts(views=event.views, forwards=event.forwards, replies=event.replies),
            event.observed_at,
        )
        if counts is None:
            return None
        return counters_updated(
            account=self._account,
            chat_id=event.chat_id,
            message_id=event.message_id,
            counts=counts,
            source="live",
            observed_at=event.observed_at,
        )

    def __call__(self, update: object) -> None:
        """Handle one raw update; never raises (a conversion error is logged and counted)."""
        if self._sink.intake_paused:
            if not self.missed:
                log.warning("intake paused: live updates wait for the catch-up after it")
            self.missed += 1
            return
        now = datetime.now(UTC)
        if len(self._counters):
            self.flush_counters(now)
        try:
            events = events_from_update(
                update,
                account=self._account,
                observed_at=now,
                chat_for_deleted=self._chat_for_deleted,
                self_id=self._self_id(),
            )
        except (
            Exception
        ) as e:  # a malformed update must not kill the update loop: recorded in the log
            self.failed += 1
            log.exception("could not convert update %s", type(update).__name__)
            self._sink.submit(
                failure_event(
                    account=self._account,
                    kind="live",
                    error=f"conversion failed: {type(e).__name__}",
                    detail=f"update {type(update).__name__}",
                    observed_at=datetime.now(UTC),
                )
            )
            return
        for event in events:
            if event.chat_id is not None and not self._is_watched(event.chat_id):
                continue
            if isinstance(event, CountersUpdated):
                coalesced = self._coalesced(event)
                if coalesced is None:
                    continue
                event = coalesced
            self._sink.submit(event)
            self.handled += 1
            if self._on_posted is not None and isinstance(event, MessagePosted):
                self._on_posted(event, getattr(update, "message", None))
