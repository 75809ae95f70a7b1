"""What the log already holds for a chat, so a re-import appends nothing (also past the dedup window).

JetStream drops a repeated ``Nats-Msg-Id`` only within the stream's duplicate window (2 min), so
before importing a chat we read its ``tg.msg.<chat_id>`` and ``tg.chat.<chat_id>`` subjects and keep
the ids of messages already posted with exact dates in a sorted ``array('q')`` (8 bytes per message),
the readings of those posted with local dates (17 bytes each; the shown one is the best-ranked,
latest), plus the event ids of chat facts. Records are decoded only as far as needed.
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


# Runs of increasing ids kept apart before they are merged into one (a sort): each import appends
# its messages in id order, so a chat imported a few times has a few runs.
_MAX_RUNS: Final = 16


class _Run:
    """Readings in log order whose ids increase: three parallel arrays (17 bytes a reading)."""

    def __init__(self) -> None:
        self.ids: array[int] = array("q")
        self.ranks: array[int] = array("b")
        self.dates: array[int] = array("q")

    def find(self, message_id: int) -> int | None:
        i = bisect_left(self.ids, message_id)
        return i if i < len(self.ids) and self.ids[i] == message_id else None


class LocalReadings:
    """Posts with local dates: per message id, the rank and date (unix s) of the reading the
    projections show among them (the highest rank, the latest of it). Whether the message also has
    exact dates is ``KnownIds.has_message``'s to say."""

    def __init__(self) -> None:
        self._runs: list[_Run] = []

    def add(self, message_id: int, rank: int, date: int) -> None:
        """Record a reading (in log order)."""
        run = self._runs[-1] if self._runs else None
        if run is None or (run.ids and message_id <= run.ids[-1]):
            run = _Run()
            self._runs.append(run)
        run.ids.append(message_id)
        run.ranks.append(rank)
        run.dates.append(date)

    def settle(self) -> None:
        """Merge the runs into one when there are many (ids out of order): a stable sort by
        (id, rank) whose last entry per id is its shown reading."""
        if len(self._runs) <= _MAX_RUNS:
            return
        entries = [(r, i) for r in self._runs for i in range(len(r.ids))]
        entries.sort(key=lambda e: e[0].ids[e[1]] * 4 + e[0].ranks[e[1]])
        merged = _Run()
        for n, (run, i) in enumerate(entries):
            last = n + 1 == len(entries)
            if last or entries[n + 1][0].ids[entries[n + 1][1]] != run.ids[i]:
                merged.ids.append(run.ids[i])
                merged.ranks.append(run.ranks[i])
                merged.dates.append(run.dates[i])
        self._runs = [merged]

    def get(self, message_id: int) -> tuple[int, int] | None:
        """(rank, date) of the shown reading of ``message_id``, None if it has none."""
        best: tuple[int, int] | None = None
        for run in self._runs:  # in log order: a later run wins a tie of ranks
            i = run.find(message_id)
            if i is not None and (best is None or run.ranks[i] >= best[0]):
                best = (run.ranks[i], run.dates[i])
        return best


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
    local.settle()
    return KnownIds(posted, chat_events, local, forum=forum)
