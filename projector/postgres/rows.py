"""Pure conversion of decoded events into the row sets the Postgres projection writes (no I/O)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, NamedTuple, NewType

import msgspec

from schemas import ids
from schemas.events import (
    ERROR_MAX_CHARS,
    BackfillCompleted,
    BackfillProgressed,
    BackfillStarted,
    CatchUpCompleted,
    ChatDiscovered,
    ChatLeft,
    ChatUpdated,
    CountersUpdated,
    Event,
    FloodWaited,
    GapFillCompleted,
    IngestFailed,
    MediaStored,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    ReactionsUpdated,
    chat_info_time,
    date_rank,
)

_json: Final = msgspec.json.Encoder()
Json = NewType("Json", str)  # a JSON document as text (a jsonb column of the tables)
_EMPTY: Final = "[]"


class MessageStageRow(NamedTuple):
    """One row of the message stage: its fields are the stage's columns, in order, and the only
    list of them (``projector/postgres/sql.py`` builds its SQL from it; values are set by name)."""

    chat_id: int
    id_scope: str  # "" for channels, else the account (schemas.ids.message_scope)
    message_id: int
    account: str
    sender_id: int | None
    sender_kind: str | None
    sender_name: str | None
    sender_username: str | None
    date: datetime
    date_rank: int  # schemas.events.date_rank: 2 exact, 1 local in a --tz zone, 0 guessed
    edit_date: datetime | None
    text: str
    entities: Json
    reply_to_message_id: int | None
    reply_top_id: int | None
    forum_topic: bool
    forward: Json | None
    via_bot_id: int | None
    via_bot_name: str | None
    post_author: str | None
    views: int | None
    forwards: int | None
    replies: int | None
    discussion_chat_id: int | None
    grouped_id: int | None
    media_type: str | None
    media: Json | None
    reactions: Json
    action_type: str | None
    action: Json | None
    buttons: Json | None
    is_service: bool
    pinned: bool
    observed_at: datetime
    seq: int
    first_seq: int
    first_source: str
    content_hash: str
    counts: bool  # rule "date readings": set false in SQL for a snapshot a better reading outranks


_PG_TYPES: Final[dict[object, str]] = {
    int: "int8",
    str: "text",
    bool: "bool",
    datetime: "timestamptz",
    Json: "text",
}


def _pg_type(annotation: object) -> str:
    """The stage column type of a field annotation (``X | None`` is nullable ``X``)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return _PG_TYPES[args[0] if args else annotation]


_HINTS: Final = typing.get_type_hints(MessageStageRow)
MESSAGE_STAGE_COLUMNS: Final[tuple[tuple[str, str], ...]] = tuple(
    (name, _pg_type(_HINTS[name])) for name in MessageStageRow._fields
)
# Columns whose stage text is JSON (jsonb in the tables).
JSON_COLUMNS: Final = frozenset(
    n for n in MessageStageRow._fields if _HINTS[n] is Json or Json in typing.get_args(_HINTS[n])
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
    ("id_scope", "text"),
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

DeleteRow = tuple[int | None, str, int, datetime, int]


# The kinds of chat metadata / crawler status change; PgSql.group_op has the statements of each.
GroupOpKind = Literal[
    "discovered",
    "updated",
    "title",
    "migrated",
    "photo",
    "left",
    "backfill_started",
    "backfill_progress",
    "backfill_completed",
    "gapfill",
    "recovered",
    "flood",
    "error",
]


@dataclass(frozen=True)
class GroupOp:
    """One metadata change of a chat (telegram_groups / crawler_status), applied in seq order."""

    op: GroupOpKind
    seq: int
    params: dict[str, object]


@dataclass
class PgRows:
    """Everything one batch writes, grouped by statement."""

    messages: list[MessageStageRow] = field(default_factory=list)
    deletes: list[DeleteRow] = field(default_factory=list)
    reactions: list[tuple[str, int, int, str, int]] = field(
        default_factory=list
    )  # (json, seq, chat, id scope, msg)
    media: list[tuple[str, str, int, str, int, int]] = field(
        default_factory=list
    )  # (sha256, path, chat, id scope, msg, seq)
    counters: list[tuple[int | None, int | None, int | None, int, str, int, int]] = field(
        default_factory=list
    )  # (views, forwards, replies, chat, id scope, msg, seq), in seq order
    ops: list[GroupOp] = field(default_factory=list)
    max_seq: int = 0


def message_row(
    event: MessagePosted | MessageEdited,
    seq: int,
    first_seq: int,
    first_source: str,
    *,
    scope: str,
) -> MessageStageRow:
    """The stage row of a posted/edited snapshot; ``scope`` is its id scope
    (``schemas.ids.message_scope``), which the caller has computed to key the message."""
    m = event.message
    chat_id = event.chat_id
    if chat_id is None:
        raise ValueError("a message snapshot without chat_id")
    s = m.sender
    r = m.reply_to
    media = m.media
    action = m.action
    # Positional, in field order (a rebuild builds a million of these: keywords cost a third of
    # the time); tests/projector/test_rows.py checks every field by name.
    return MessageStageRow._make(
        (
            chat_id,
            scope,
            m.message_id,
            event.account,
            None if s is None else s.id,
            None if s is None else s.kind,
            None if s is None else s.display_name,
            None if s is None else s.username,
            m.date,
            date_rank(m),
            m.edit_date,
            m.text,
            _EMPTY if not m.entities else _json.encode(m.entities).decode(),
            None if r is None else r.message_id,
            None if r is None else r.top_id,
            False if r is None else r.forum_topic,
            None if m.forward is None else _json.encode(m.forward).decode(),
            m.via_bot_id,
            m.via_bot_name,
            m.post_author,
            m.views,
            m.forwards,
            m.replies,
            m.discussion_chat_id,
            m.grouped_id,
            None if media is None else media.type,
            None if media is None else _json.encode(media).decode(),
            _EMPTY if not m.reactions else _json.encode(m.reactions).decode(),
            None if action is None else action.type,
            None if action is None else _json.encode(action).decode(),
            _json.encode(m.buttons).decode() if m.buttons else None,
            action is not None,
            m.pinned,
            event.observed_at,
            seq,
            first_seq,
            first_source,
            ids.content_digest(m),
            True,
        )
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
    if isinstance(event, CatchUpCompleted):
        return GroupOp("recovered", seq, base)
    if isinstance(event, FloodWaited):
        return GroupOp("flood", seq, {**base, "seconds": event.seconds})
    if isinstance(event, IngestFailed):
        return GroupOp(
            "error", seq, {**base, "error": event.error[:ERROR_MAX_CHARS], "kind": event.error_kind}
        )
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
            "migrated_to": c.migrated_to,
            # (time, seq) of the link, where the update names one (rule "migration link")
            "link_at": None if c.migrated_to is None else chat_info_time(event),
            "link_seq": 0 if c.migrated_to is None else seq,
            "photo_id": c.photo_id,
            "photo_at": None if c.photo_id is None else chat_info_time(event),
            "photo_seq": 0 if c.photo_id is None else seq,
            "account": event.account,
            "at": event.observed_at,
            "info_at": chat_info_time(event),
            # (time, seq) of the title, where the update names one (rule "chat metadata")
            "title_at": None if c.title is None else chat_info_time(event),
            "title_seq": 0 if c.title is None else seq,
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
    return GroupOp(
        "title",
        seq,
        {"chat_id": event.chat_id, "title": action.title, "at": event.message.date, "seq": seq},
    )


_SNAPSHOTS: Final = (MessagePosted, MessageEdited)


def build_rows(records: list[tuple[int, Event]]) -> PgRows:
    """Group a batch of (seq, event) in seq order into row sets; raises on an event it cannot convert."""
    rows = PgRows()
    first: dict[tuple[int, str, int], tuple[int, str]] = {}
    messages = rows.messages
    for seq, event in records:
        if isinstance(event, _SNAPSHOTS):
            chat_id = event.chat_id or 0
            scope = ids.message_scope(event.account, chat_id)
            key = (chat_id, scope, event.message.message_id)
            seen = first.get(key)
            if seen is None:
                seen = first[key] = (seq, event.source)
            messages.append(message_row(event, seq, *seen, scope=scope))
            if event.message.action is not None:
                op = _title_op(event, seq)
                if op is not None:
                    rows.ops.append(op)
                link = (
                    None
                    if event.chat_id is None
                    else ids.migration_link(event.chat_id, event.message)
                )
                changed, photo = ids.chat_photo_change(event.message)
                if changed and event.chat_id is not None:
                    rows.ops.append(
                        GroupOp(
                            "photo",
                            seq,
                            {
                                "chat_id": event.chat_id,
                                "photo": photo,
                                "at": event.message.date,
                                "seq": seq,
                            },
                        )
                    )
                if link is not None:
                    rows.ops.append(
                        GroupOp(
                            "migrated",
                            seq,
                            {
                                "chat_id": link[0],
                                "to": link[1],
                                "at": event.message.date,
                                "seq": seq,
                            },
                        )
                    )
        elif isinstance(event, MessageDeleted):
            rows.deletes.append(
                (event.chat_id, event.account, event.message_id, event.observed_at, seq)
            )
        elif isinstance(event, ReactionsUpdated):
            if event.chat_id is not None:
                rows.reactions.append(
                    (
                        _json.encode(event.reactions).decode(),
                        seq,
                        event.chat_id,
                        ids.message_scope(event.account, event.chat_id),
                        event.message_id,
                    )
                )
        elif isinstance(event, CountersUpdated):
            if event.chat_id is not None:
                scope = ids.message_scope(event.account, event.chat_id)
                rows.counters.append(
                    (
                        event.views,
                        event.forwards,
                        event.replies,
                        event.chat_id,
                        scope,
                        event.message_id,
                        seq,
                    )
                )
        elif isinstance(event, MediaStored):
            if event.chat_id is not None:
                scope = ids.message_scope(event.account, event.chat_id)
                rows.media.append(
                    (event.sha256, event.path, event.chat_id, scope, event.message_id, seq)
                )
        else:
            op = _chat_op(event, seq)
            if op is not None:
                rows.ops.append(op)
    rows.max_seq = max((seq for seq, _ in records), default=0)
    return rows
