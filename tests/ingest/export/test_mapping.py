"""Every part of an export message maps to the event contract (no log needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from telethon.tl import types

from ingest.export.errors import UnmappableMessage
from ingest.export.mapping import MessageMapper
from ingest.export.service_messages import ACTION_CLASSES, action_type
from schemas.codec import Codec
from schemas.events import ChatKind, Entity, MessagePosted, MessageSnapshot, ReactionCount
from schemas.ids import posted_id
from tests.ingest.export.exports import PLACEHOLDER, msg, service

CHAT = -1001730156619


def mapper(*, tz: str = "UTC", kind: ChatKind = "supergroup", chat_id: int = CHAT) -> MessageMapper:
    return MessageMapper(
        chat_id=chat_id,
        chat_kind=kind,
        account="main",
        tz=ZoneInfo(tz),
        observed_at=datetime(2026, 11, 28, tzinfo=UTC),
    )


def event(raw: dict[str, Any], **kwargs: Any) -> MessagePosted:
    m = mapper(**kwargs)
    return m.posted(raw, m.message_id(raw))


def snap(raw: dict[str, Any], **kwargs: Any) -> MessageSnapshot:
    return event(raw, **kwargs).message


def test_message_becomes_an_import_posted_event_with_the_live_event_id() -> None:
    posted = event(msg(5135, "cara gini"))
    assert (posted.event_id, posted.source, posted.chat_id, posted.account) == (
        posted_id(CHAT, 5135, account="main"),
        "import",
        CHAT,
        "main",
    )
    assert Codec().decode(Codec().encode(posted)) == posted


def test_date_comes_from_date_unixtime() -> None:
    assert snap(msg(1, date_unixtime="1657161327")).date == datetime(
        2022, 7, 7, 2, 35, 27, tzinfo=UTC
    )


def test_sender_is_a_marked_peer_with_its_name() -> None:
    sender = snap(msg(1, from_id="channel1730156619", **{"from": "News"})).sender
    assert sender is not None
    assert (sender.id, sender.kind, sender.display_name) == (-1001730156619, "channel", "News")


def test_deleted_account_sender_has_no_name() -> None:
    sender = snap(msg(1, **{"from": None})).sender
    assert sender is not None and sender.display_name is None and sender.id == 111


def test_text_array_gives_entities_with_utf16_offsets() -> None:
    parts = [
        "😀 hi ",
        {"type": "bold", "text": "bold"},
        " ",
        {"type": "mention_name", "text": "Bob", "user_id": 222},
        {"type": "custom_emoji", "text": "🔥", "document_id": "5368324170671202286"},
        {"type": "text_link", "text": "here", "href": "https://aalto.fi"},
        {"type": "pre", "text": "x = 1", "language": "python"},
        {"type": "link", "text": "https://a.fi"},
        {"type": "strikethrough", "text": "old"},
    ]
    raw = msg(
        1,
        parts,
        text_entities=[p if isinstance(p, dict) else {"type": "plain", "text": p} for p in parts],
    )
    s = snap(raw)
    assert s.text == "😀 hi bold Bob🔥herex = 1https://a.fiold"
    assert s.entities == (
        Entity(type="bold", offset=6, length=4),  # 😀 is two UTF-16 code units
        Entity(type="mention_name", offset=11, length=3, user_id=222),
        Entity(type="custom_emoji", offset=14, length=2, custom_emoji_id=5368324170671202286),
        Entity(type="text_link", offset=16, length=4, url="https://aalto.fi"),
        Entity(type="pre", offset=20, length=5, language="python"),
        Entity(type="url", offset=25, length=12),
        Entity(type="strike", offset=37, length=3),
    )


@pytest.mark.parametrize(
    "kind",
    [
        "italic",
        "underline",
        "spoiler",
        "code",
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "email",
        "phone",
        "bank_card",
        "blockquote",
        "unknown",
    ],
)
def test_every_entity_type_is_kept(kind: str) -> None:
    parts = [{"type": "plain", "text": "ä "}, {"type": kind, "text": "value"}]
    assert snap(msg(1, parts, text_entities=parts)).entities == (
        Entity(type=kind, offset=2, length=5),
    )


def test_old_export_without_text_entities_reads_the_text_array() -> None:
    raw = msg(1, ["see ", {"type": "hashtag", "text": "#aalto"}])
    del raw["text_entities"]
    s = snap(raw)
    assert (s.text, s.entities) == ("see #aalto", (Entity(type="hashtag", offset=4, length=6),))


def test_edited_message_carries_its_latest_edit_date() -> None:
    s = snap(
        msg(
            1,
            date_unixtime="1657161327",
            edited="2022-07-07T09:35:51",
            edited_unixtime="1657161351",
        )
    )
    assert s.edit_date == datetime(2022, 7, 7, 2, 35, 51, tzinfo=UTC)


@pytest.mark.parametrize(
    "odd",
    [
        {"edited": "1970-01-01T02:00:00"},
        {"edited_unixtime": "0"},
        {"edited": "garbage"},
        {"edited": "2024-03-01T11:00:00"},
    ],
)
def test_odd_edited_values_do_not_mark_an_edit(odd: dict[str, str]) -> None:
    s = snap(msg(1, **odd))
    assert s.edit_date is None and s.text == "hello"


def test_old_export_local_dates_use_the_given_zone() -> None:
    raw = msg(1, date="2019-05-01T12:00:00", edited="2019-05-01T12:30:00")
    del raw["date_unixtime"]
    s = snap(raw, tz="Europe/Helsinki")
    assert s.date == datetime(2019, 5, 1, 9, 0, tzinfo=UTC)
    assert s.edit_date == datetime(2019, 5, 1, 9, 30, tzinfo=UTC)


def test_old_export_numeric_from_id_and_string_ids() -> None:
    raw = msg(1, from_id=4321, reply_to_message_id="7")
    raw["id"] = "12"
    s = snap(raw)
    assert (
        s.message_id == 12
        and s.sender is not None
        and (s.sender.id, s.sender.kind) == (4321, "user")
    )
    assert s.reply_to is not None and s.reply_to.message_id == 7


def test_reply_to_another_chat_keeps_the_peer() -> None:
    s = snap(msg(2, reply_to_message_id=99, reply_to_peer_id="channel555"))
    assert s.reply_to is not None and (s.reply_to.message_id, s.reply_to.peer_id) == (
        99,
        -1000000000555,
    )


def test_forward_keeps_name_and_id_when_present() -> None:
    s = snap(msg(2, forwarded_from="Some Channel", forwarded_from_id="channel777"))
    assert s.forward is not None and (s.forward.name, s.forward.peer_id) == (
        "Some Channel",
        -1000000000777,
    )


def test_forward_from_hidden_user_is_still_a_forward() -> None:
    s = snap(msg(2, forwarded_from=None))
    assert s.forward is not None and s.forward.name is None and s.forward.peer_id is None


def test_saved_from_names_the_origin_in_saved_messages() -> None:
    s = snap(msg(2, saved_from="Aalto Group"), kind="saved", chat_id=42)
    assert s.forward is not None and s.forward.name == "Aalto Group"


def test_via_bot_and_author_are_kept() -> None:
    s = snap(msg(3, via_bot="@gif", author="Editor"))
    assert (s.via_bot_name, s.post_author) == ("gif", "Editor")


def test_channel_post_without_from_id_is_sent_by_the_channel() -> None:
    raw = msg(3)
    del raw["from_id"], raw["from"]
    sender = snap(raw, kind="channel").sender
    assert sender is not None and (sender.id, sender.kind) == (CHAT, "channel")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {
                "photo": "photos/photo_1@01-03-2024.jpg",
                "photo_file_size": 1000,
                "width": 1280,
                "height": 720,
            },
            {"type": "photo", "size": 1000, "width": 1280, "height": 720},
        ),
        (
            {
                "file": PLACEHOLDER,
                "file_name": "notes.pdf",
                "file_size": 5000,
                "mime_type": "application/pdf",
            },
            {
                "type": "document",
                "size": 5000,
                "file_name": "notes.pdf",
                "mime_type": "application/pdf",
            },
        ),
        (
            {"file": "files/slides.pptx", "mime_type": "application/vnd.ms-powerpoint"},
            {"type": "document", "file_name": "slides.pptx"},
        ),
        (
            {
                "file": PLACEHOLDER,
                "media_type": "sticker",
                "sticker_emoji": "😀",
                "width": 512,
                "height": 512,
            },
            {"type": "sticker", "emoji": "😀", "width": 512, "height": 512},
        ),
        (
            {
                "file": PLACEHOLDER,
                "media_type": "voice_message",
                "mime_type": "audio/ogg",
                "duration_seconds": 4,
            },
            {"type": "voice", "duration_s": 4.0, "mime_type": "audio/ogg"},
        ),
        (
            {"file": PLACEHOLDER, "media_type": "video_message", "duration_seconds": 9},
            {"type": "video_note", "duration_s": 9.0},
        ),
        (
            {"file": PLACEHOLDER, "media_type": "animation", "width": 320, "height": 240},
            {"type": "animation", "width": 320},
        ),
        (
            {
                "file": PLACEHOLDER,
                "media_type": "video_file",
                "duration_seconds": 60,
                "media_spoiler": True,
            },
            {"type": "video", "spoiler": True},
        ),
        (
            {"file": PLACEHOLDER, "media_type": "audio_file", "performer": "X", "title": "Song"},
            {"type": "audio", "title": "Song"},
        ),
        (
            {
                "poll": {
                    "question": "Lunch?",
                    "closed": False,
                    "total_voters": 3,
                    "answers": [
                        {"text": "Yes", "voters": 2, "chosen": True},
                        {"text": "No", "voters": 1},
                    ],
                }
            },
            {"type": "poll", "poll_question": "Lunch?", "poll_answers": ("Yes", "No")},
        ),
        (
            {"location_information": {"latitude": 60.18, "longitude": 24.83}},
            {"type": "location", "latitude": 60.18, "longitude": 24.83},
        ),
        (
            {
                "place_name": "Otaniemi",
                "address": "Espoo",
                "location_information": {"latitude": 60.1, "longitude": 24.8},
            },
            {"type": "location", "title": "Otaniemi"},
        ),
        (
            {
                "location_information": {"latitude": 60.1, "longitude": 24.8},
                "live_location_period_seconds": 900,
            },
            {"type": "location", "duration_s": 900.0},
        ),
        (
            {
                "contact_information": {
                    "first_name": "Ada",
                    "last_name": "L",
                    "phone_number": "+358 1",
                }
            },
            {"type": "contact", "title": "Ada L"},
        ),
        (
            {"game_title": "Lumberjack", "game_description": "chop"},
            {"type": "other", "title": "Lumberjack"},
        ),
    ],
)
def test_media_maps_to_a_descriptor(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    media = snap(msg(4, "", **fields)).media
    assert media is not None
    for key, value in expected.items():
        assert getattr(media, key) == value, key


def test_contact_phone_number_stays_out_of_the_event() -> None:
    posted = event(
        msg(4, "", contact_information={"first_name": "Ada", "phone_number": "+358 40 123"})
    )
    assert b"358 40 123" not in Codec().encode(posted)


def test_reactions_of_every_kind() -> None:
    reactions = [
        {
            "type": "emoji",
            "count": 3,
            "emoji": "👍",
            "recent": [{"from": "A", "from_id": "user1", "date": "x"}],
        },
        {"type": "custom_emoji", "count": 1, "document_id": "5368324170671202286"},
        {"type": "paid", "count": 5},
    ]
    assert snap(msg(5, reactions=reactions)).reactions == (
        ReactionCount(count=3, emoji="👍"),
        ReactionCount(count=1, custom_emoji_id=5368324170671202286),
        ReactionCount(count=5, paid=True),
    )


@pytest.mark.parametrize(
    ("raw", "action_type", "checks"),
    [
        (
            service(10, "join_group_by_link", inviter="Admin"),
            "chat_joined_by_link",
            {"user_ids": (111,), "details.inviter": "Admin"},
        ),
        (service(10, "join_group_by_request"), "chat_joined_by_request", {"user_ids": (111,)}),
        (
            service(10, "invite_members", members=["Bob", "Carol"]),
            "chat_add_user",
            {"details.members": "Bob\nCarol", "user_ids": ()},
        ),
        (
            service(10, "remove_members", members=["Alice"]),
            "chat_delete_user",
            {"user_ids": (111,)},
        ),
        (service(10, "pin_message", message_id=7), "pin_message", {"message_id": 7}),
        (
            service(10, "edit_group_title", title="New name"),
            "chat_edit_title",
            {"title": "New name"},
        ),
        (service(10, "create_group", title="G", members=["A"]), "chat_create", {"title": "G"}),
        (service(10, "migrate_to_supergroup"), "chat_migrate_to", {}),
        (
            service(10, "migrate_from_group", title="Old group"),
            "channel_migrate_from",
            {"title": "Old group"},
        ),
        (
            service(10, "phone_call", duration_seconds=61, discard_reason="hangup"),
            "phone_call",
            {"details.duration_seconds": 61, "details.discard_reason": "hangup"},
        ),
        (service(10, "group_call", duration=300), "group_call", {"details.duration": 300}),
        (
            service(10, "invite_to_group_call", members=["Bob"]),
            "invite_to_group_call",
            {"details.members": "Bob"},
        ),
        (service(10, "topic_created", title="Exams"), "topic_create", {"title": "Exams"}),
        (
            service(10, "topic_edit", new_title="Exams 2", new_icon_emoji_id=5),
            "topic_edit",
            {"title": "Exams 2", "details.icon_emoji_id": 5},
        ),
        (
            service(10, "set_messages_ttl", period=86400),
            "set_messages_t_t_l",
            {"details.period": 86400},
        ),
        (service(10, "boost_apply", boosts=2), "boost_apply", {"details.boosts": 2}),
        (
            service(10, None, information_text="Custom"),
            "custom_action",
            {"details.information_text": "Custom"},
        ),
        (service(10, "some_future_action", stars=5), "some_future_action", {"details.stars": 5}),
    ],
)
def test_service_message_action_and_fields(
    raw: dict[str, Any], action_type: str, checks: dict[str, Any]
) -> None:
    s = snap(raw)
    assert s.action is not None and s.action.type == action_type
    assert s.sender is not None and s.sender.id == 111
    for key, value in checks.items():
        actual = (
            s.action.details[key[len("details.") :]]
            if key.startswith("details.")
            else getattr(s.action, key)
        )
        assert actual == value, key


def test_pinned_service_message_replies_to_the_pinned_message() -> None:
    s = snap(service(10, "pin_message", message_id=7))
    assert s.reply_to is not None and s.reply_to.message_id == 7


def test_action_names_match_telethon_action_classes() -> None:
    for export_name, cls in ACTION_CLASSES.items():
        assert hasattr(types, f"MessageAction{cls}"), export_name
    assert action_type("join_group_by_link") == "chat_joined_by_link"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"id": 9, "type": "unsupported"}, "unsupported"),
        ({"id": 9, "type": "message", "text": "no date"}, "no usable date"),
        ({"id": 9, "type": "message", "date": "not a date"}, "ValueError"),
        ({"id": 9, "type": "weird", "date_unixtime": "1"}, "unknown message type"),
    ],
)
def test_unmappable_message_says_why(raw: dict[str, Any], reason: str) -> None:
    m = mapper()
    with pytest.raises(UnmappableMessage) as info:
        m.posted(raw, m.message_id(raw))
    assert reason in info.value.reason and info.value.message_id == 9


@pytest.mark.parametrize(
    "raw", [{"type": "message"}, {"id": "x"}, {"id": 0}, {"id": -1_000_000_005}, [1, 2], "text"]
)
def test_message_without_a_usable_id_is_unmappable(raw: Any) -> None:
    with pytest.raises(UnmappableMessage):
        mapper().message_id(raw)


def test_negative_id_outside_a_supergroup_is_unmappable() -> None:
    with pytest.raises(UnmappableMessage):
        mapper(kind="group", chat_id=-4242).message_id({"id": -5})


def test_pre_migration_id_of_a_supergroup_is_admitted() -> None:
    assert mapper().message_id({"id": -999_999_995}) == -999_999_995


def test_old_format_channel_post_is_sent_by_the_channel() -> None:
    # {"name":"C","type":"private_channel","id":777000,...,"from":"C","from_id":777000}
    raw = {"id": 2, "type": "message", "date": "2019-05-01T10:05:00", "from": "C"}
    channel = -1_000_000_777_000
    for from_id in (777000, "777000"):
        sender = snap({**raw, "from_id": from_id}, kind="channel", chat_id=channel).sender
        assert sender is not None
        assert (sender.id, sender.kind, sender.display_name) == (channel, "channel", "C")


def test_a_user_with_the_channels_number_stays_a_user() -> None:
    raw = {"id": 2, "type": "message", "date": "2019-05-01T10:05:00", "from_id": "user777000"}
    sender = snap(raw, kind="channel", chat_id=-1_000_000_777_000).sender
    assert sender is not None and (sender.id, sender.kind) == (777000, "user")


def test_exported_audio_keeps_its_performer_and_title() -> None:
    raw = msg(
        9,
        "",
        file="(File not included.)",
        media_type="audio_file",
        performer="Sibelius",
        title="Finlandia",
        mime_type="audio/mpeg",
        duration_seconds=200,
    )
    media = snap(raw).media
    assert media is not None
    assert (media.type, media.performer, media.title) == ("audio", "Sibelius", "Finlandia")


def test_inline_bot_buttons_keep_their_text_and_url() -> None:
    raw = msg(
        3,
        inline_bot_buttons=[
            [
                {"type": "url", "text": "Site", "data": "https://example.org"},
                {"type": "callback", "text": "Like", "data": "bGlrZQ=="},
            ]
        ],
    )
    s = snap(raw)
    assert [[(b.text, b.url) for b in row] for row in s.buttons] == [
        [("Site", "https://example.org"), ("Like", None)]
    ]
