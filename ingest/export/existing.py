"""What the log already holds for a chat, so a re-import appends nothing (also past the dedup window).

JetStream drops a repeated ``Nats-Msg-Id`` only within the stream's duplicate window (2 min), so
before importing a chat we read its ``tg.msg.<chat_id>`` and ``tg.chat.<chat_id>`` subjects and keep
the ids of messages already posted with exact dates in a sorted ``array('q')`` (8 bytes per message),
those posted only with local dates with the rank and date of the reading the projections show
(17 bytes each), plus the event ids of chat facts. Records are decoded only as far as needed.
Outside channels a message id is the observing account's own numbering, so only posts by the
importing account count there (another account's id 5 is a different message).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from datetime import datetime
from typing import Final

import msgspec

from eventlog import EventLog
from schemas.errors import SchemaError
from schemas.events import (
    EXACT_DATE,
    GIVEN_ZONE,
    GUESSED_ZONE,
    ChatDiscovered,
    ChatUpdated,
    MessagePosted,
    kind_of,
)
from schemas.ids import message_scope

_POSTED = kind_of(MessagePosted)
_LOCAL_SINCE: Final = 3  # message.posted v3 says whether dates are local (schemas.upcast)


class _Local(msgspec.Struct):
    given: bool = False


class _Message(msgspec.Struct):
    message_id: int = 0
    date: datetime | None = None
    local_date: _Local | None = None


class _Head(msgspec.Struct):
    kind: str = ""
    event_id: str = ""
    account: str = ""
    source: str = ""
    schema_version: int = 1
    message: _Message | None = None


def _rank(head: _Head, message: _Message) -> int:
    """``schemas.events.date_rank`` of a stored post, as the upcaster lifts an old one."""
    if message.local_date is not None:
        return GIVEN_ZONE if message.local_date.given else GUESSED_ZONE
    if head.schema_version < _LOCAL_SINCE and head.source == "import":
        return GUESSED_ZONE
    return EXACT_DATE


class LocalReadings:
    """Messages posted only with local dates: per message id, the rank and date (unix s) of the
    reading the projections show (the highest rank, the latest of it)."""

    def __init__(self) -> None:
        self._ids: array[int] = array("q")
        self._ranks: array[int] = array("b")
        self._dates: array[int] = array("q")

    def add(self, message_id: int, rank: int, date: int) -> None:
        """Record a reading (in log order)."""
        self._ids.append(message_id)
        self._ranks.append(rank)
        self._dates.append(date)

    def settle(self, exact: array[int]) -> None:
        """Keep one reading per id, the shown one, and none for ids that have exact dates."""
        ids, ranks, dates = self._ids, self._ranks, self._dates
        if all(ids[i] < ids[i + 1] for i in range(len(ids) - 1)):  # one import: the usual case
            order: list[int] | range = range(len(ids))
            if not any(_has(exact, x) for x in ids):
                return
        else:
            # A stable sort by (id, rank): the last entry of an id is its shown reading.
            order = sorted(range(len(ids)), key=lambda i: (ids[i], ranks[i]))
        kept = [
            i
            for n, i in enumerate(order)
            if (n + 1 == len(order) or ids[order[n + 1]] != ids[i]) and not _has(exact, ids[i])
        ]
        self._ids = array("q", (ids[i] for i in kept))
        self._ranks = array("b", (ranks[i] for i in kept))
        self._dates = array("q", (dates[i] for i in kept))

    def get(self, message_id: int) -> tuple[int, int] | None:
        """(rank, date) of the shown reading of ``message_id``, None if it has none."""
        i = bisect_left(self._ids, message_id)
        if i < len(self._ids) and self._ids[i] == message_id:
            return self._ranks[i], self._dates[i]
        return None


def _has(ordered: array[int], value: int) -> bool:
    i = bisect_left(ordered, value)
    return i < len(ordered) and ordered[i] == value


_decoder = msgspec.json.Decoder(_Head)


class KnownIds:
    """Message ids already posted in one chat with exact dates (sorted), the shown readings of those
    posted only with local dates, and event ids of the chat's other facts."""

    def __init__(
        self,
        posted: array[int],
        chat_events: set[str],
        local: LocalReadings | None = None,
        *,
        forum: bool = False,
    ) -> None:
        self._posted = posted
        self.chat_events = chat_events
        self.local = local or LocalReadings()
        self.forum = forum  # a discovery or update in the log says the chat is a forum

    def __len__(self) -> int:
        return len(self._posted)

    def has_message(self, message_id: int) -> bool:
        """True if a ``MessagePosted`` of ``message_id`` with exact dates is already in the log."""
        return _has(self._posted, message_id)


async def known_ids(
    log: EventLog, chat_id: int, *, account: str, batch_size: int = 5000
) -> KnownIds:
    """Read what the log holds about ``chat_id`` (messages posted as ``account`` numbers them, chat
    facts)."""
    scope = message_scope(account, chat_id)
    posted: array[int] = array("q")
    local = LocalReadings()
    chat_events: set[str] = set()
    decode = _decoder.decode
    # One filter subject per read: a single-subject consumer reads faster than a multi-filter one.
    async for batch in log.read_raw(subjects=[f"tg.msg.{chat_id}"], batch_size=batch_size):
        for record in batch:
            try:
                head = decode(record.data)
            except msgspec.DecodeError:
                continue  # not ours to judge here; the projector dead-letters it
            message = head.message
            if (
                head.kind == _POSTED
                and message is not None
                and message_scope(head.account, chat_id) == scope
            ):
                rank = _rank(head, message)
                if rank == EXACT_DATE or message.date is None:
                    posted.append(message.message_id)
                else:
                    local.add(message.message_id, rank, int(message.date.timestamp()))
    # Chat facts are few: decoded whole, so an old record's id is upcast to today's rule.
    forum = False
    async for batch in log.read_raw(subjects=[f"tg.chat.{chat_id}"], batch_size=batch_size):
        for record in batch:
            try:
                event = log.codec.decode(record.data)
            except SchemaError:
                continue
            chat_events.add(event.event_id)
            if isinstance(event, ChatDiscovered | ChatUpdated) and event.chat.forum:
                forum = True
    if any(posted[i] > posted[i + 1] for i in range(len(posted) - 1)):
        posted = array("q", sorted(posted))  # appended out of order (gap-fill, imports): rare
    local.settle(posted)
    return KnownIds(posted, chat_events, local, forum=forum)
