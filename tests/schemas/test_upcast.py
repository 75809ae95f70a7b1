"""Message events of schema version 1 (written before account-scoped ids) upcast to today's ids;
posts of version 2 (before snapshots said how their dates were read) from an import become local
readings in an unrecorded zone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec

from schemas import ids
from schemas.codec import Codec
from schemas.events import (
    GUESSED_ZONE,
    ChatInfo,
    ChatUpdated,
    Entity,
    Event,
    LocalDate,
    MediaStored,
    MessageEdited,
    MessagePosted,
    MessageSnapshot,
    ReactionCount,
    ReactionsUpdated,
    date_rank,
)

CODEC = Codec()
WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CHANNEL = -1001234567890
BASIC_GROUP = -4567


def _as_v1(event: Event, old_id: str) -> bytes:
    """The payload a pre-change ingest wrote for ``event``: version 1 and the old id rule's id."""
    body = json.loads(CODEC.encode(event))
    body.update(schema_version=1, event_id=old_id)
    return json.dumps(body).encode()


def _post(chat_id: int, account: str) -> MessagePosted:
    return MessagePosted(
        event_id=ids.posted_id(chat_id, 7, account=account),
        account=account,
        observed_at=WHEN,
        source="live",
        chat_id=chat_id,
        message=MessageSnapshot(message_id=7, date=WHEN, text="hi"),
    )


def test_v1_basic_group_post_upcasts_to_the_account_scoped_id() -> None:
    current = _post(BASIC_GROUP, "second")
    decoded = CODEC.decode(_as_v1(current, "p-0123456789abcdef0123456789abcdef"))
    assert (decoded.event_id, decoded.schema_version) == (current.event_id, 3)
    assert decoded == current


def _as_v2(event: Event) -> bytes:
    body = json.loads(CODEC.encode(event))
    body.update(schema_version=2)
    return json.dumps(body).encode()


def test_v2_import_post_upcasts_to_a_local_reading_in_an_unrecorded_zone() -> None:
    stored = msgspec.structs.replace(_post(CHANNEL, "main"), source="import")
    decoded = CODEC.decode(_as_v2(stored))
    assert isinstance(decoded, MessagePosted)
    assert decoded.message.local_date == LocalDate()
    assert date_rank(decoded.message) == GUESSED_ZONE
    assert decoded.event_id == ids.posted_event_id(
        CHANNEL, decoded.message, account="main", observed_at=WHEN
    )
    assert decoded.event_id != stored.event_id  # the id names the reading


def test_v2_live_post_keeps_exact_dates_and_its_id() -> None:
    stored = _post(CHANNEL, "main")
    decoded = CODEC.decode(_as_v2(stored))
    assert decoded == stored  # only the version changes


def test_v1_chat_update_upcasts_to_the_id_that_names_its_time() -> None:
    info = ChatInfo(chat_id=BASIC_GROUP, kind="group", title="One")
    current = ChatUpdated(
        event_id=ids.chat_updated_id(info, observed_at=WHEN),
        account="main",
        observed_at=WHEN,
        source="live",
        chat_id=BASIC_GROUP,
        chat=info,
    )
    decoded = CODEC.decode(_as_v1(current, "cu-0123456789abcdef0123456789abcdef"))
    assert decoded == current
    later = ids.chat_updated_id(info, observed_at=WHEN + timedelta(minutes=1))
    assert later != current.event_id  # the same name later is another fact


def test_v1_channel_post_keeps_its_id() -> None:
    current = _post(CHANNEL, "main")
    old_rule = ids._make("p", CHANNEL, 7)
    assert current.event_id == old_rule
    assert CODEC.decode(_as_v1(current, old_rule)).event_id == old_rule


def test_v1_edit_upcasts_to_the_id_that_digests_formatting() -> None:
    snap = MessageSnapshot(
        message_id=7,
        date=WHEN,
        edit_date=WHEN,
        text="bold",
        entities=(Entity(type="bold", offset=0, length=4),),
    )
    current = MessageEdited(
        event_id=ids.edited_id(BASIC_GROUP, snap, account="main"),
        account="main",
        observed_at=WHEN,
        source="live",
        chat_id=BASIC_GROUP,
        message=snap,
    )
    assert CODEC.decode(_as_v1(current, "e-old")) == current


def test_v1_reactions_and_media_upcast_to_account_scoped_ids() -> None:
    reactions = (ReactionCount(count=3, emoji="👍"),)
    updated = ReactionsUpdated(
        event_id=ids.reactions_id(BASIC_GROUP, 7, reactions, account="main"),
        account="main",
        observed_at=WHEN,
        source="live",
        chat_id=BASIC_GROUP,
        message_id=7,
        reactions=reactions,
    )
    stored = MediaStored(
        event_id=ids.media_stored_id(BASIC_GROUP, 7, "ab" * 32, account="main"),
        account="main",
        observed_at=WHEN,
        source="live",
        chat_id=BASIC_GROUP,
        message_id=7,
        sha256="ab" * 32,
        size=10,
        path="media/ab",
    )
    assert CODEC.decode(_as_v1(updated, "r-old")) == updated
    assert CODEC.decode(_as_v1(stored, "m-old")) == stored
