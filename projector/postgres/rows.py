"""Pure conversion of decoded events into the row sets the Postgres projection writes (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import msgspec

from schemas import ids
from schemas.events import (
    BackfillCompleted,
    BackfillProgressed,
    BackfillStarted,
    ChatDiscovered,
    ChatLeft,
    ChatUpdated,
    Event,
    FloodWaited,
    GapFillCompleted,
    IngestFailed,
    MediaStored,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    ReactionsUpdated,
)

_json: Final = msgspec.json.Encoder()
_EMPTY: Final = "[]"

# Column order of the message stage table (projector/postgres/sql.py builds its SQL from this list).
MESSAGE_STAGE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("chat_id", "int8"),
    ("message_id", "int8"),
    ("account", "text"),
    ("sender_id", "int8"),
    ("sender_kind", "text"),
    ("sender_name", "text"),
    ("sender_username", "text"),
    ("date", "timestamptz"),
    ("edit_date", "timestamptz"),
    ("text", "text"),
    ("entities", "text"),
    ("reply_to_message_id", "int8"),
    ("reply_top_id", "int8"),
    ("forum_topic", "bool"),
    ("forward", "text"),
    ("via_bot_id", "int8"),
    ("post_author", "text"),
    ("views", "int8"),
    ("forwards", "int8"),
    ("replies", "int8"),
    ("grouped_id", "int8"),
    ("media_type", "text"),
    ("media", "text"),
    ("reactions", "text"),
    ("action_type", "text"),
    ("action", "text"),
    ("is_service", "bool"),
    ("pinned", "bool"),
    ("observed_at", "timestamptz"),
    ("seq", "int8"),
    ("first_seq", "int8"),
    ("first_source", "text"),
    ("content_hash", "text"),
)
DELETE_STAGE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("chat_id", "int8"),
    ("account", "text"),
    ("message_id", "int8"),
    ("deleted_at", "timestamptz"),
    ("seq", "int8"),
)
# The reaction stage takes PgRows.reactions tuples as they are.
REACTION_STAGE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("reactions", "text"),
    ("seq", "int8"),
    ("chat_id", "int8"),
    ("message_id", "int8"),
)
# What converting a malformed event can raise: such a batch is bisected into dead letters.
CONVERSION_ERRORS: Final = (
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    OverflowError,
    UnicodeError,
)

MessageRow = tuple[object, ...]
DeleteRow = tuple[int | None, str, int, datetime, int]


@dataclass(frozen=True)
class GroupOp:
    """One metadata change of a chat (telegram_groups / crawler_status), applied in seq order."""

    op: str
    seq: int
    params: dict[str, object]


@dataclass
class PgRows:
    """Everything one batch writes, grouped by statement."""

    messages: list[MessageRow] = field(default_factory=list)
    deletes: list[DeleteRow] = field(default_factory=list)
    reactions: list[tuple[str, int, int, int]] = field(
        default_factory=list
    )  # (json, seq, chat, msg)
    media: list[tuple[str, str, int, int, int]] = field(
        default_factory=list
    )  # (sha256, path, chat, msg, seq)
    ops: list[GroupOp] = field(default_factory=list)
    max_seq: int = 0


def _enc(value: object) -> str | None:
    return None if value is None else _json.encode(value).decode()


def message_row(
    event: MessagePosted | MessageEdited, seq: int, first_seq: int, first_source: str
) -> MessageRow:
    """The stage row of a posted/edited snapshot."""
    m = event.message
    chat_id = event.chat_id
    if chat_id is None:
        raise ValueError("a message snapshot without chat_id")
    s = m.sender
    r = m.reply_to
    media = m.media
    action = m.action
    return (
        chat_id,
        m.message_id,
        event.account,
        None if s is None else s.id,
        None if s is None else s.kind,
        None if s is None else s.display_name,
        None if s is None else s.username,
        m.date,
        m.edit_date,
        m.text,
        _EMPTY if not m.entities else _json.encode(m.entities).decode(),
        None if r is None else r.message_id,
        None if r is None else r.top_id,
        False if r is None else r.forum_topic,
        _enc(m.forward),
        m.via_bot_id,
        m.post_author,
        m.views,
        m.forwards,
        m.replies,
        m.grouped_id,
        None if media is None else media.type,
        _enc(media),
        _EMPTY if not m.reactions else _json.encode(m.reactions).decode(),
        None if action is None else action.type,
        _enc(action),
        action is not None,
        m.pinned,
        event.observed_at,
        seq,
        first_seq,
        first_source,
        ids.content_digest(m),
    )


def _status_op(event: Event, seq: int) -> GroupOp | None:
    chat_id = event.chat_id
    if chat_id is None:
        return None
    base: dict[str, object] = {
        "chat_id": chat_id,
        "account": event.account,
        "at": event.observed_at,
        "seq": seq,
    }
    if isinstance(event, BackfillStarted):
        return GroupOp("backfill_started", seq, {**base, "total": event.estimated_total})
    if isinstance(event, BackfillProgressed):
        return GroupOp(
            "backfill_progress",
            seq,
            {**base, "fetched": event.fetched, "total": event.estimated_total},
        )
    if isinstance(event, BackfillCompleted):
        return GroupOp("backfill_completed", seq, {**base, "fetched": event.fetched})
    if isinstance(event, GapFillCompleted):
        return GroupOp("gapfill", seq, {**base, "new": event.new})
    if isinstance(event, FloodWaited):
        return GroupOp("flood", seq, {**base, "seconds": event.seconds})
    if isinstance(event, IngestFailed):
        return GroupOp("error", seq, {**base, "error": event.error[:2000]})
    return None


def _chat_op(event: Event, seq: int) -> GroupOp | None:
    if isinstance(event, ChatDiscovered | ChatUpdated):
        c = event.chat
        params: dict[str, object] = {
            "chat_id": c.chat_id,
            "kind": c.kind,
            "title": c.title,
            "username": c.username,
            "member_count": c.member_count,
            "forum": c.forum,
            "account": event.account,
            "at": event.observed_at,
            "seq": seq,
        }
        return GroupOp(
            "discovered" if isinstance(event, ChatDiscovered) else "updated", seq, params
        )
    if isinstance(event, ChatLeft) and event.chat_id is not None:
        return GroupOp(
            "left",
            seq,
            {
                "chat_id": event.chat_id,
                "account": event.account,
                "at": event.observed_at,
                "seq": seq,
            },
        )
    return _status_op(event, seq)


def _title_op(event: MessagePosted | MessageEdited, seq: int) -> GroupOp | None:
    action = event.message.action
    if (
        action is None
        or action.title is None
        or "title" not in action.type.lower()
        or event.chat_id is None
    ):
        return None
    return GroupOp("title", seq, {"chat_id": event.chat_id, "title": action.title, "seq": seq})


def build_rows(records: list[tuple[int, Event]]) -> PgRows:
    """Group a batch of (seq, event) in seq order into row sets; raises on an event it cannot convert."""
    rows = PgRows()
    first: dict[tuple[int, int], tuple[int, str]] = {}
    for seq, event in records:
        rows.max_seq = max(rows.max_seq, seq)
        if isinstance(event, MessagePosted | MessageEdited):
            key = (event.chat_id or 0, event.message.message_id)
            first_seq, first_source = first.setdefault(key, (seq, event.source))
            rows.messages.append(message_row(event, seq, first_seq, first_source))
            if event.message.action is not None:
                op = _title_op(event, seq)
                if op is not None:
                    rows.ops.append(op)
        elif isinstance(event, MessageDeleted):
            rows.deletes.append(
                (event.chat_id, event.account, event.message_id, event.observed_at, seq)
            )
        elif isinstance(event, ReactionsUpdated):
            if event.chat_id is not None:
                rows.reactions.append(
                    (_json.encode(event.reactions).decode(), seq, event.chat_id, event.message_id)
                )
        elif isinstance(event, MediaStored):
            if event.chat_id is not None:
                rows.media.append((event.sha256, event.path, event.chat_id, event.message_id, seq))
        else:
            op = _chat_op(event, seq)
            if op is not None:
                rows.ops.append(op)
    return rows
