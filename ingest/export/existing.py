"""What the log already holds for a chat, so a re-import appends nothing (also past the dedup window).

JetStream drops a repeated ``Nats-Msg-Id`` only within the stream's duplicate window (2 min), so
before importing a chat we read its ``tg.msg.<chat_id>`` and ``tg.chat.<chat_id>`` subjects and keep
the ids of messages already posted in a sorted ``array('q')`` (8 bytes per message) plus the event ids
of chat facts. Records are decoded only as far as needed: kind, event id, account and message id.
Outside channels a message id is the observing account's own numbering, so only posts by the
importing account count there (another account's id 5 is a different message).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left

import msgspec

from eventlog import EventLog
from schemas.events import MessagePosted, kind_of
from schemas.ids import message_scope

_POSTED = kind_of(MessagePosted)


class _MessageId(msgspec.Struct):
    message_id: int = 0


class _Head(msgspec.Struct):
    kind: str = ""
    event_id: str = ""
    account: str = ""
    message: _MessageId | None = None


_decoder = msgspec.json.Decoder(_Head)


class KnownIds:
    """Message ids already posted in one chat (sorted), and event ids of the chat's other facts."""

    def __init__(self, posted: array[int], chat_events: set[str]) -> None:
        self._posted = posted
        self.chat_events = chat_events

    def __len__(self) -> int:
        return len(self._posted)

    def has_message(self, message_id: int) -> bool:
        """True if a ``MessagePosted`` of ``message_id`` is already in the log."""
        posted = self._posted
        i = bisect_left(posted, message_id)
        return i < len(posted) and posted[i] == message_id


async def known_ids(
    log: EventLog, chat_id: int, *, account: str, batch_size: int = 5000
) -> KnownIds:
    """Read what the log holds about ``chat_id`` (messages posted as ``account`` numbers them, chat
    facts)."""
    scope = message_scope(account, chat_id)
    posted: array[int] = array("q")
    chat_events: set[str] = set()
    decode = _decoder.decode
    # One filter subject per read: a single-subject consumer reads faster than a multi-filter one.
    async for batch in log.read_raw(subjects=[f"tg.msg.{chat_id}"], batch_size=batch_size):
        for record in batch:
            try:
                head = decode(record.data)
            except msgspec.DecodeError:
                continue  # not ours to judge here; the projector dead-letters it
            if (
                head.kind == _POSTED
                and head.message is not None
                and message_scope(head.account, chat_id) == scope
            ):
                posted.append(head.message.message_id)
    async for batch in log.read_raw(subjects=[f"tg.chat.{chat_id}"], batch_size=batch_size):
        for record in batch:
            try:
                chat_events.add(decode(record.data).event_id)
            except msgspec.DecodeError:
                continue
    if any(posted[i] > posted[i + 1] for i in range(len(posted) - 1)):
        posted = array("q", sorted(posted))  # appended out of order (gap-fill, imports): rare
    return KnownIds(posted, chat_events)
