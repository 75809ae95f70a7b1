"""Real Telethon updates through the live handler into a real JetStream → exactly the expected events."""

from __future__ import annotations

from collections.abc import Sequence

from telethon.tl import types

from eventlog import EventLog
from ingest.telegram.handlers import LiveHandler, events_from_update, sent_message
from ingest.telegram.known import MessageIndex, ObservingSink
from schemas import ids
from schemas.events import Event, MessageDeleted, MessageEdited, MessagePosted, ReactionsUpdated

from .logsink import LogSink, read_all
from .tl import (
    BASIC,
    CHANNEL,
    CHANNEL_MARKED,
    at,
    basic_message,
    channel_message,
    new_basic,
    new_channel,
    service,
)

SELF_ID = 4242  # the account's own user id


async def _run(
    event_log: EventLog, updates: Sequence[object], *, watched: set[int] | None = None
) -> list[Event]:
    index = MessageIndex(account="main")
    async with LogSink(event_log) as inner:
        handler = LiveHandler(
            account="main",
            sink=ObservingSink(inner, index),
            is_watched=lambda c: watched is None or c in watched,
            chat_for_deleted=index.chat_for_deleted,
            self_id=lambda: SELF_ID,
        )
        for update in updates:
            handler(update)
        await inner.flush()
    return await read_all(event_log)


async def test_new_channel_message_becomes_posted_with_full_snapshot(event_log: EventLog) -> None:
    msg = channel_message(
        10,
        "héllo 😀 world",
        entities=[
            types.MessageEntityBold(offset=9, length=5),
            types.MessageEntityTextUrl(offset=0, length=5, url="https://x.fi"),
        ],
        reply_to=types.MessageReplyHeader(reply_to_msg_id=5, reply_to_top_id=3, forum_topic=True),
        fwd_from=types.MessageFwdHeader(
            date=at(-60), from_id=types.PeerChannel(888), channel_post=77, post_author="Ed"
        ),
        via_bot_id=99,
        post_author="Bob",
        views=12,
        forwards=3,
        replies=types.MessageReplies(replies=4, replies_pts=1),
        grouped_id=123456,
        media=types.MessageMediaDocument(
            document=types.Document(
                id=5,
                access_hash=1,
                file_reference=b"",
                date=at(0),
                mime_type="audio/ogg",
                size=2048,
                dc_id=2,
                attributes=[types.DocumentAttributeAudio(duration=7, voice=True)],
            )
        ),
        reactions=types.MessageReactions(
            results=[types.ReactionCount(reaction=types.ReactionEmoji("👍"), count=3)]
        ),
    )
    events = await _run(event_log, [new_channel(msg)])
    assert len(events) == 1
    ev = events[0]
    assert isinstance(ev, MessagePosted)
    assert ev.event_id == ids.posted_id(CHANNEL_MARKED, 10, account="main")
    assert ev.chat_id == CHANNEL_MARKED and ev.source == "live"
    snap = ev.message
    assert snap.text == "héllo 😀 world"
    assert [(e.type, e.offset, e.length, e.url) for e in snap.entities] == [
        ("bold", 9, 5, None),
        ("text_link", 0, 5, "https://x.fi"),
    ]
    assert snap.sender is not None and (snap.sender.id, snap.sender.kind) == (42, "user")
    assert snap.reply_to is not None and (snap.reply_to.message_id, snap.reply_to.top_id) == (5, 3)
    assert snap.reply_to.forum_topic
    assert snap.forward is not None and snap.forward.peer_id == -1_000_000_000_888
    assert snap.forward.message_id == 77
    assert (
        snap.via_bot_id,
        snap.post_author,
        snap.views,
        snap.forwards,
        snap.replies,
        snap.grouped_id,
    ) == (99, "Bob", 12, 3, 4, 123456)
    assert snap.media is not None and (snap.media.type, snap.media.size, snap.media.duration_s) == (
        "voice",
        2048,
        7.0,
    )
    assert [(r.emoji, r.count) for r in snap.reactions] == [("👍", 3)]


async def test_channel_post_with_comments_names_its_discussion_group(
    event_log: EventLog,
) -> None:
    msg = channel_message(
        11,
        "post",
        replies=types.MessageReplies(replies=2, replies_pts=1, comments=True, channel_id=555),
    )
    events = await _run(event_log, [new_channel(msg)])
    assert isinstance(events[0], MessagePosted)
    assert events[0].message.discussion_chat_id == -1_000_000_000_555


async def test_channel_edit_becomes_edited_with_edit_id(event_log: EventLog) -> None:
    msg = channel_message(10, "fixed", edit_date=at(30))
    events = await _run(
        event_log, [types.UpdateEditChannelMessage(message=msg, pts=2, pts_count=1)]
    )
    assert len(events) == 1 and isinstance(events[0], MessageEdited)
    assert events[0].event_id == ids.edited_id(CHANNEL_MARKED, events[0].message, account="main")
    assert events[0].message.text == "fixed" and events[0].message.edit_date == at(30)


async def test_channel_delete_names_the_chat(event_log: EventLog) -> None:
    events = await _run(
        event_log,
        [
            types.UpdateDeleteChannelMessages(
                channel_id=CHANNEL, messages=[10, 11], pts=3, pts_count=2
            )
        ],
    )
    assert [
        (type(e), e.chat_id, e.message_id) for e in events if isinstance(e, MessageDeleted)
    ] == [(MessageDeleted, CHANNEL_MARKED, 10), (MessageDeleted, CHANNEL_MARKED, 11)]
    assert events[0].event_id == ids.deleted_id(
        account="main", chat_id=CHANNEL_MARKED, message_id=10
    )


async def test_basic_group_delete_without_chat_id_is_resolved_from_what_the_account_saw(
    event_log: EventLog,
) -> None:
    updates = [
        new_basic(basic_message(7)),
        types.UpdateDeleteMessages(messages=[7, 8], pts=2, pts_count=2),
    ]
    events = await _run(event_log, updates)
    deletes = [e for e in events if isinstance(e, MessageDeleted)]
    assert [(d.chat_id, d.message_id) for d in deletes] == [(-BASIC, 7), (None, 8)]
    assert deletes[0].event_id == ids.deleted_id(account="main", chat_id=None, message_id=7)
    nochat = await read_all(event_log, subjects=["tg.msg.nochat.main"])
    assert [e.message_id for e in nochat if isinstance(e, MessageDeleted)] == [8]


async def test_chat_actions_become_service_snapshots(event_log: EventLog) -> None:
    updates = [
        new_channel(service(20, types.MessageActionChatAddUser(users=[1, 2]))),
        new_channel(service(21, types.MessageActionChatDeleteUser(user_id=3))),
        new_channel(service(22, types.MessageActionChatJoinedByLink(inviter_id=9))),
        new_channel(service(23, types.MessageActionChatEditTitle(title="New title"))),
        new_channel(service(24, types.MessageActionChatEditPhoto(photo=types.PhotoEmpty(id=5)))),
        new_channel(
            service(
                25,
                types.MessageActionPinMessage(),
                reply_to=types.MessageReplyHeader(reply_to_msg_id=10),
            )
        ),
    ]
    events = await _run(event_log, updates)
    actions = [
        (
            e.message.action.type,
            e.message.action.user_ids,
            e.message.action.title,
            e.message.action.message_id,
        )
        for e in events
        if isinstance(e, MessagePosted) and e.message.action
    ]
    assert actions == [
        ("chat_add_user", (1, 2), None, None),
        ("chat_delete_user", (3,), None, None),
        ("chat_joined_by_link", (42,), None, None),
        ("chat_edit_title", (), "New title", None),
        ("chat_edit_photo", (), None, None),
        ("pin_message", (), None, 10),
    ]
    join = next(e for e in events if isinstance(e, MessagePosted) and e.message.message_id == 22)
    assert join.message.action is not None and join.message.action.details == {"inviter_id": 9}


async def test_reaction_update_becomes_reactions_updated(event_log: EventLog) -> None:
    reactions = types.MessageReactions(
        results=[
            types.ReactionCount(reaction=types.ReactionEmoji("🔥"), count=2),
            types.ReactionCount(reaction=types.ReactionCustomEmoji(document_id=555), count=1),
            types.ReactionCount(reaction=types.ReactionPaid(), count=50),
        ]
    )
    update = types.UpdateMessageReactions(
        peer=types.PeerChannel(CHANNEL), msg_id=10, reactions=reactions
    )
    events = await _run(event_log, [update, update])
    assert len(events) == 1  # the same summary twice is one fact
    ev = events[0]
    assert isinstance(ev, ReactionsUpdated)
    assert [(r.emoji, r.custom_emoji_id, r.paid, r.count) for r in ev.reactions] == [
        ("🔥", None, False, 2),
        (None, 555, False, 1),
        (None, None, True, 50),
    ]
    assert ev.event_id == ids.reactions_id(CHANNEL_MARKED, 10, ev.reactions, account="main")


async def test_unwatched_chats_are_ignored(event_log: EventLog) -> None:
    events = await _run(
        event_log, [new_channel(channel_message(1)), new_basic(basic_message(2))], watched={-BASIC}
    )
    assert [(e.chat_id, e.message.message_id) for e in events if isinstance(e, MessagePosted)] == [
        (-BASIC, 2)
    ]


async def test_short_chat_message_is_recorded_like_a_full_one(event_log: EventLog) -> None:
    short = types.UpdateShortChatMessage(
        id=30, from_id=43, chat_id=BASIC, message="short", pts=1, pts_count=1, date=at(30)
    )
    events = await _run(event_log, [short])
    assert len(events) == 1 and isinstance(events[0], MessagePosted)
    assert (events[0].chat_id, events[0].message.text, events[0].message.sender.id) == (  # type: ignore[union-attr]
        -BASIC,
        "short",
        43,
    )


async def test_short_private_message_is_recorded_live(event_log: EventLog) -> None:
    short = types.UpdateShortMessage(
        id=31,
        user_id=77,
        message="hei",
        pts=1,
        pts_count=1,
        date=at(31),
        entities=[types.MessageEntityBold(offset=0, length=3)],
    )
    events = await _run(event_log, [short])
    assert len(events) == 1 and isinstance(events[0], MessagePosted)
    event = events[0]
    assert event.event_id == ids.posted_id(77, 31, account="main")
    snap = event.message
    assert (event.chat_id, snap.text, snap.date, [e.type for e in snap.entities]) == (
        77,
        "hei",
        at(31),
        ["bold"],
    )
    assert snap.sender is not None and (snap.sender.id, snap.sender.kind) == (77, "user")


async def test_outgoing_short_message_is_sent_by_the_account(event_log: EventLog) -> None:
    short = types.UpdateShortMessage(
        id=32, user_id=77, message="moi", pts=1, pts_count=1, date=at(32), out=True
    )
    events = await _run(event_log, [short])
    assert isinstance(events[0], MessagePosted) and events[0].message.sender is not None
    assert (events[0].chat_id, events[0].message.sender.id) == (77, SELF_ID)


async def test_outgoing_message_without_from_id_is_sent_by_the_account(
    event_log: EventLog,
) -> None:
    message = types.Message(
        id=33, peer_id=types.PeerUser(77), date=at(33), message="mine", out=True
    )
    events = await _run(event_log, [types.UpdateNewMessage(message=message, pts=1, pts_count=1)])
    assert isinstance(events[0], MessagePosted) and events[0].message.sender is not None
    assert events[0].message.sender.id == SELF_ID


def test_short_sent_message_is_completed_from_the_request() -> None:
    reply = types.UpdateShortSentMessage(
        id=34, pts=1, pts_count=1, date=at(34), out=True, media=types.MessageMediaEmpty()
    )
    message = sent_message(reply, peer=types.PeerChat(BASIC), text="sent")
    (event,) = events_from_update(
        types.UpdateNewMessage(message=message, pts=1, pts_count=1),
        account="main",
        observed_at=at(40),
        self_id=SELF_ID,
    )
    assert isinstance(event, MessagePosted) and event.message.sender is not None
    assert (event.chat_id, event.message.message_id, event.message.text) == (-BASIC, 34, "sent")
    assert event.message.sender.id == SELF_ID


async def test_an_unconvertible_update_is_recorded_and_the_next_one_still_handled(
    event_log: EventLog,
) -> None:
    broken = types.UpdateNewChannelMessage(
        message=types.Message(id=1, peer_id=None, date=at(1)),
        pts=1,
        pts_count=1,
    )
    events = await _run(event_log, [broken, new_channel(channel_message(2))])
    assert [type(e).__name__ for e in events] == ["IngestFailed", "MessagePosted"]
    assert events[0].error.startswith("conversion failed")  # type: ignore[attr-defined]


def test_pruning_keeps_the_delete_map_longer_than_message_details() -> None:
    index = MessageIndex(account="main")
    for update in (new_basic(basic_message(7)), new_channel(channel_message(8))):
        for event in events_from_update(update, account="main", observed_at=at(0)):
            index.observe(event)
    assert index.prune(details_before=at(60), map_before=at(-60)) == 2
    assert index.get(-BASIC, 7) is None and index.chat_for_deleted(7) == -BASIC
    index.prune(details_before=at(60), map_before=at(60))
    assert index.chat_for_deleted(7) is None


async def test_live_updates_under_paused_intake_are_left_to_catch_up(event_log: EventLog) -> None:
    index = MessageIndex(account="main")
    async with LogSink(event_log) as inner:
        handler = LiveHandler(
            account="main",
            sink=ObservingSink(inner, index),
            is_watched=lambda c: True,
            chat_for_deleted=index.chat_for_deleted,
            self_id=lambda: SELF_ID,
        )
        inner.intake_paused = True  # a full disk: nothing could be made durable
        for i in range(1, 1001):
            handler(new_channel(channel_message(i)))
        assert (inner.submitted, handler.missed) == ([], 1000)  # nothing held in memory
        inner.intake_paused = False
        handler(new_channel(channel_message(1001)))
        await inner.flush()
    events = await read_all(event_log)
    assert [e.message.message_id for e in events if isinstance(e, MessagePosted)] == [1001]
