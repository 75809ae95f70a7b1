"""The message stage row takes every column from the snapshot field of the same meaning.

``message_row`` builds its rows positionally (a rebuild builds millions), so a value written one
place off would land in a column of the same type unnoticed by the merge tests, which read rows
back through the same function: here every column is checked by name against the snapshot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from projector.postgres.rows import MessageStageRow, build_rows, message_row
from schemas import ids
from schemas.events import (
    GIVEN_ZONE,
    Button,
    Entity,
    ForwardOrigin,
    LocalDate,
    Media,
    MessageEdited,
    MessagePosted,
    MessageSnapshot,
    ReactionCount,
    ReplyTo,
    Sender,
    ServiceAction,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BASIC_GROUP = -4001


def _full_snapshot() -> MessageSnapshot:
    """Every field set, each int and text to a value no other field has."""
    return MessageSnapshot(
        message_id=11,
        date=T0,
        local_date=LocalDate(zone="Europe/Helsinki", given=True),
        edit_date=T0 + timedelta(minutes=3),
        sender=Sender(id=12, kind="user", display_name="Ada", username="ada"),
        text="hello there",
        entities=(Entity(type="bold", offset=0, length=5),),
        reply_to=ReplyTo(message_id=13, top_id=14, forum_topic=True),
        forward=ForwardOrigin(peer_id=15, name="origin"),
        via_bot_id=16,
        via_bot_name="helperbot",
        post_author="editor",
        views=17,
        forwards=18,
        replies=19,
        discussion_chat_id=20,
        grouped_id=21,
        media=Media(type="photo", file_unique_id="u22"),
        reactions=(ReactionCount(count=23, emoji="👍"),),
        action=ServiceAction(type="chat_edit_title", title="New title"),
        buttons=((Button(text="open", url="https://example.org"),),),
        pinned=True,
    )


def _json(text: str | None) -> object:
    return None if text is None else json.loads(text)


def test_every_column_comes_from_the_field_of_its_name() -> None:
    snap = _full_snapshot()
    observed = T0 + timedelta(hours=1)
    event = MessageEdited(
        event_id="e-1",
        account="acct",
        observed_at=observed,
        source="live",
        chat_id=BASIC_GROUP,
        message=snap,
    )
    row = message_row(event, 31, 30, "backfill", scope="acct")._asdict()
    assert isinstance(row, dict) and set(row) == set(MessageStageRow._fields)
    plain = {
        k: v
        for k, v in row.items()
        if k not in {"entities", "forward", "media", "reactions", "action", "buttons"}
    }
    assert plain == {
        "chat_id": BASIC_GROUP,
        "id_scope": "acct",
        "message_id": 11,
        "account": "acct",
        "sender_id": 12,
        "sender_kind": "user",
        "sender_name": "Ada",
        "sender_username": "ada",
        "date": T0,
        "date_rank": GIVEN_ZONE,
        "edit_date": T0 + timedelta(minutes=3),
        "text": "hello there",
        "reply_to_message_id": 13,
        "reply_top_id": 14,
        "forum_topic": True,
        "via_bot_id": 16,
        "via_bot_name": "helperbot",
        "post_author": "editor",
        "views": 17,
        "forwards": 18,
        "replies": 19,
        "discussion_chat_id": 20,
        "grouped_id": 21,
        "media_type": "photo",
        "action_type": "chat_edit_title",
        "is_service": True,
        "pinned": True,
        "observed_at": observed,
        "seq": 31,
        "first_seq": 30,
        "first_source": "backfill",
        "content_hash": ids.content_digest(snap),
        "counts": True,
    }
    assert _json(row["entities"]) == [{"type": "bold", "offset": 0, "length": 5}]
    assert _json(row["forward"]) == {"peer_id": 15, "name": "origin"}
    assert _json(row["media"]) == {"type": "photo", "file_unique_id": "u22"}
    assert _json(row["reactions"]) == [{"count": 23, "emoji": "👍"}]
    assert _json(row["action"]) == {"type": "chat_edit_title", "title": "New title"}
    assert _json(row["buttons"]) == [[{"text": "open", "url": "https://example.org"}]]


def test_an_empty_snapshot_gives_empty_lists_and_nulls() -> None:
    snap = MessageSnapshot(message_id=5, date=T0)
    event = MessagePosted(
        event_id="p-1",
        account="acct",
        observed_at=T0,
        source="live",
        chat_id=-1001234567890,
        message=snap,
    )
    row = message_row(event, 7, 7, "live", scope="")
    assert (row.id_scope, row.entities, row.reactions) == ("", "[]", "[]")
    assert (row.forward, row.media, row.action, row.buttons, row.sender_id) == (None,) * 5
    assert (row.forum_topic, row.is_service, row.date_rank) == (False, False, 2)


def test_build_rows_scopes_each_row_as_it_keys_the_message() -> None:
    """Basic-group ids are numbered per account, channel ids per chat: the row's id_scope is the
    scope build_rows keyed the message by (it is computed once, there)."""
    snap = MessageSnapshot(message_id=5, date=T0)
    events = [
        MessagePosted(
            event_id=f"p-{i}",
            account=account,
            observed_at=T0,
            source="live",
            chat_id=chat_id,
            message=snap,
        )
        for i, (account, chat_id) in enumerate(
            [("a", BASIC_GROUP), ("b", BASIC_GROUP), ("a", -1001234567890), ("b", -1001234567890)]
        )
    ]
    rows = build_rows(list(enumerate(events, start=1))).messages
    assert [(r.chat_id, r.id_scope, r.first_seq) for r in rows] == [
        (BASIC_GROUP, "a", 1),
        (BASIC_GROUP, "b", 2),
        (-1001234567890, "", 3),
        (-1001234567890, "", 3),
    ]
