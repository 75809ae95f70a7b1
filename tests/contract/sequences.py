"""Hypothesis strategies for realistic event sequences: a few chats (a channel seen by two accounts,
a basic group seen by two accounts and a private chat), a few messages per chat, and every event kind,
interleaved, duplicated and out of order.

The values come from small pools so that collisions happen often: the same edit seen twice, an edit
before its post, a delete before the message, two deletes of one message, equal edit dates.
Telegram facts kept: a message's ``date`` is fixed per message (a snapshot with a local reading of
it, as an export without offsets gives, shows it shifted by its zone); message ids outside channels are
per account, so two accounts in the basic group reuse each other's ids for different messages, and
deletes there may carry no chat id.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
from hypothesis import strategies as st

from eventlog import RawRecord
from schemas.codec import Codec
from schemas.events import (
    AnyEvent,
    BackfillCompleted,
    BackfillProgressed,
    BackfillStarted,
    Button,
    CatchUpCompleted,
    ChatDiscovered,
    ChatInfo,
    ChatKind,
    ChatLeft,
    ChatUpdated,
    CountersUpdated,
    Entity,
    FloodWaited,
    ForwardOrigin,
    GapFillCompleted,
    IngestFailed,
    LocalDate,
    Media,
    MediaStored,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    MessageSnapshot,
    ReactionCount,
    ReactionsUpdated,
    ReplyTo,
    Scalar,
    Sender,
    ServiceAction,
)
from schemas.subjects import subject_for

CHANNEL: Final = -1001000000001
BASIC: Final = -4242
PRIVATE: Final = 777
ACCOUNTS_OF: Final[dict[int, tuple[str, ...]]] = {
    CHANNEL: ("a", "b"),
    BASIC: ("a", "b"),  # two accounts sharing ids there: two messages per id
    PRIVATE: ("b",),
}
KIND_OF: Final[dict[int, ChatKind]] = {CHANNEL: "supergroup", BASIC: "group", PRIVATE: "private"}
T0: Final = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

_chats = st.sampled_from(sorted(ACCOUNTS_OF))
# Message ids per chat. Outside channels Telegram numbers messages per account, unique across all
# of that account's basic groups and private chats, so account "b" never has the same id in
# BASIC and PRIVATE: their ranges are disjoint (a generator that reuses them states an
# impossible log, on which "a delete without chat id hits the account's message" is ambiguous).
MESSAGE_IDS_OF: Final[dict[int, tuple[int, int]]] = {
    CHANNEL: (1, 2),
    BASIC: (1, 2),
    PRIVATE: (3, 4),
}
_times = st.sampled_from([T0 + timedelta(hours=h) for h in range(6)])
_sources = st.sampled_from(["live", "backfill", "gapfill", "import"])
_reactions = st.sampled_from(
    [
        (),
        (ReactionCount(count=1, emoji="👍"),),
        (ReactionCount(count=2, emoji="👍"), ReactionCount(count=1, custom_emoji_id=5, paid=True)),
    ]
)
_actions = st.sampled_from(
    [
        None,
        None,
        None,
        ServiceAction(type="MessageActionChatEditTitle", title="renamed"),
        ServiceAction(type="MessageActionChatEditTitle", title="renamed again"),
        ServiceAction(type="MessageActionPinMessage", message_id=1, details={"silent": True}),
        # Migration links: in the basic group to the supergroup, in the supergroup from the group.
        ServiceAction(type="chat_migrate_to", details={"channel_id": 1000000001}),
        ServiceAction(type="channel_migrate_from", title="Basic", details={"chat_id": 4242}),
        # Photo changes: a new photo (live names its id), a removal.
        ServiceAction(type="chat_edit_photo", details={"photo_id": 7}),
        ServiceAction(type="chat_delete_photo"),
    ]
)


# How a snapshot's dates were read: exact (most), or an export's local time read in a zone (its
# offset shifts the dates): guessed UTC, a given zone, a guessed fixed offset.
_readings = st.sampled_from(
    [
        (None, timedelta(0)),
        (None, timedelta(0)),
        (None, timedelta(0)),
        (LocalDate(zone="UTC"), timedelta(0)),
        (LocalDate(zone="Europe/Helsinki", given=True), timedelta(hours=-2)),
        (LocalDate(zone="UTC+05:30"), timedelta(hours=-5, minutes=-30)),
    ]
)


@st.composite
def snapshots(draw: st.DrawFn, message_id: int) -> MessageSnapshot:
    """A snapshot of message ``message_id`` as one observation might show it."""
    local, shift = draw(_readings)
    edit_date = draw(st.sampled_from([None, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]))
    return MessageSnapshot(
        message_id=message_id,
        date=T0 + timedelta(minutes=message_id) + shift,  # fixed per message, as on Telegram
        local_date=local,
        edit_date=None if edit_date is None else edit_date + shift,
        sender=draw(
            st.sampled_from(
                [
                    None,
                    Sender(id=7, kind="user", display_name="Ann", username="ann"),
                    Sender(id=7, kind="user", display_name="Ann B"),
                ]
            )
        ),
        text=draw(st.sampled_from(["", "a", "b"])),
        entities=draw(st.sampled_from([(), (Entity(type="bold", offset=0, length=1),)])),
        reply_to=draw(st.sampled_from([None, ReplyTo(message_id=1, top_id=1, forum_topic=True)])),
        forward=draw(st.sampled_from([None, ForwardOrigin(peer_id=5, name="src", date=T0)])),
        views=draw(st.sampled_from([None, 1, 5])),
        discussion_chat_id=draw(st.sampled_from([None, -1001000000077])),
        grouped_id=draw(st.sampled_from([None, 99])),
        media=draw(
            st.sampled_from(
                [
                    None,
                    Media(type="photo", file_unique_id="p1", width=3, height=2),
                    Media(type="document", file_unique_id="d1", size=10, duration_s=1.5),
                ]
            )
        ),
        reactions=draw(_reactions),
        action=draw(_actions),
        buttons=draw(
            st.sampled_from([(), ((Button(text="Open", url="https://x"), Button(text="ok")),)])
        ),
        via_bot_name=draw(st.sampled_from([None, "gif"])),
        pinned=draw(st.booleans()),
    )


@st.composite
def message_events(draw: st.DrawFn) -> AnyEvent:
    """A posted, edited, deleted, reactions, counters or media-stored event of some message."""
    chat = draw(_chats)
    message_id = draw(st.integers(*MESSAGE_IDS_OF[chat]))
    common: dict[str, Any] = {
        "event_id": "",
        "account": draw(st.sampled_from(ACCOUNTS_OF[chat])),
        "observed_at": draw(_times),
        "source": draw(_sources),
        "chat_id": chat,
    }
    kind = draw(
        st.sampled_from(
            ["posted", "edited", "edited", "deleted", "deleted", "reactions", "media", "counters"]
        )
    )
    if kind == "posted":
        return MessagePosted(message=draw(snapshots(message_id)), **common)
    if kind == "edited":
        return MessageEdited(message=draw(snapshots(message_id)), **common)
    if kind == "deleted":
        if chat != CHANNEL and draw(st.booleans()):
            common["chat_id"] = None  # basic groups and private chats: Telegram names no chat
        return MessageDeleted(message_id=message_id, **common)
    if kind == "reactions":
        return ReactionsUpdated(message_id=message_id, reactions=draw(_reactions), **common)
    if kind == "counters":
        return CountersUpdated(
            message_id=message_id,
            views=draw(st.sampled_from([None, 5, 8])),
            forwards=draw(st.sampled_from([None, 0, 2])),
            replies=draw(st.sampled_from([None, 1])),
            **common,
        )
    sha = draw(st.sampled_from(["s1", "s2"]))
    return MediaStored(message_id=message_id, sha256=sha, size=1, path=f"/media/{sha}", **common)


@st.composite
def chat_events(draw: st.DrawFn) -> AnyEvent:
    """A chat metadata or crawler status event of some chat."""
    chat = draw(_chats)
    at = draw(_times)
    common: dict[str, Any] = {
        "event_id": "",
        "account": draw(st.sampled_from(ACCOUNTS_OF[chat])),
        "observed_at": at,
        "source": "live",
        "chat_id": chat,
    }
    info = ChatInfo(
        chat_id=chat,
        kind=KIND_OF[chat],
        title=draw(st.sampled_from([None, "one", "two"])),
        username=draw(st.sampled_from([None, "handle"])),
        member_count=draw(st.sampled_from([None, 3, 9])),
        forum=draw(st.booleans()),
        # An export's chat info is as of its newest message, older than its import; T0 + 2 min
        # falls between the dates of messages 1 and 3 (title changes race it both ways).
        as_of=draw(
            st.sampled_from([None, None, T0 - timedelta(hours=1), T0 + timedelta(minutes=2)])
        ),
        migrated_to=CHANNEL if chat == BASIC and draw(st.booleans()) else None,
        photo_id=draw(st.sampled_from([None, 5, 6])),
    )
    total = draw(st.sampled_from([None, 10, 20]))
    fetched = draw(st.integers(min_value=0, max_value=3))
    options: list[AnyEvent] = [
        ChatDiscovered(chat=info, **common),
        ChatUpdated(chat=info, **common),
        ChatLeft(reason="kicked", **common),
        BackfillStarted(since=T0, estimated_total=total, **common),
        BackfillProgressed(
            since=T0, fetched=fetched, last_message_id=fetched, estimated_total=total, **common
        ),
        BackfillCompleted(since=T0, fetched=fetched, **common),
        GapFillCompleted(
            window_start=T0,
            window_end=at,
            fetched=fetched,
            new=fetched,
            edited=0,
            deleted=0,
            **common,
        ),
        FloodWaited(
            seconds=draw(st.sampled_from([5, 30])), method="GetHistory", resume_at=at, **common
        ),
        IngestFailed(
            error=draw(st.sampled_from(["boom", "x" * 2100])),
            error_kind=draw(st.sampled_from([None, "backfill", "media"])),
            **common,
        ),
        CatchUpCompleted(from_message_id=1, to_message_id=fetched, new=fetched, **common),
    ]
    return draw(st.sampled_from(options))


@st.composite
def event_sequences(draw: st.DrawFn, max_events: int = 24) -> list[AnyEvent]:
    """A log's worth of events: mostly message events, some chat events, some facts observed again
    (another time, source or account: gap-fill, a second account, a spooled append) and some
    records appended twice."""
    events = draw(
        st.lists(
            st.one_of(message_events(), message_events(), chat_events()),
            min_size=1,
            max_size=max_events,
        )
    )
    events = [_with_id(e, f"e{i}") for i, e in enumerate(events)]
    for _ in range(draw(st.integers(0, 10), label="observed again")):
        # Observed again later in the log, at any time: the log's order is not observation order.
        source = draw(st.integers(0, len(events) - 1))
        target = draw(st.integers(source + 1, len(events)))
        again = events[source]
        accounts = ACCOUNTS_OF.get(again.chat_id or 0, (again.account,))
        events.insert(
            target,
            msgspec.structs.replace(
                again,
                event_id=f"{again.event_id}-again{target}",
                observed_at=draw(_times),
                source=draw(_sources),
                account=draw(st.sampled_from(accounts)),
            ),
        )
    positions = st.integers(0, len(events) - 1)
    # The same record appended again later (a retry outside the dedup window, a re-import).
    for source, target in draw(st.lists(st.tuples(positions, positions), max_size=3)):
        events.insert(target, events[source])
    return events


def _with_id(event: AnyEvent, event_id: str) -> AnyEvent:
    return msgspec.structs.replace(event, event_id=event_id)


def raw_records(codec: Codec, events: list[AnyEvent], first_seq: int = 1) -> list[RawRecord]:
    """The records a log would hold for ``events`` (seq from ``first_seq``)."""
    return [
        RawRecord(seq, subject_for(e), codec.encode(e))
        for seq, e in enumerate(events, start=first_seq)
    ]


def _snap(
    message_id: int,
    text: str = "a",
    *,
    edit_h: int | None = None,
    date: datetime | None = None,
    **fields: Any,
) -> MessageSnapshot:
    edit_date = None if edit_h is None else T0 + timedelta(hours=edit_h)
    return MessageSnapshot(
        message_id=message_id,
        date=T0 + timedelta(minutes=message_id) if date is None else date,
        edit_date=edit_date,
        text=text,
        **fields,
    )


_HELSINKI: Final = LocalDate(zone="Europe/Helsinki", given=True)


def _photo(photo_id: int) -> ServiceAction:
    return ServiceAction(type="chat_edit_photo", details={"photo_id": photo_id})


_TO_CHANNEL: Final[dict[str, Scalar]] = {"channel_id": 1000000001}  # CHANNEL, unmarked
_UTC: Final = LocalDate(zone="UTC")
_GUESSED: Final = T0 + timedelta(hours=2, minutes=1)  # message 1's Helsinki time read as UTC


def _at(hours: int, account: str = "a", chat_id: int | None = CHANNEL) -> dict[str, Any]:
    return {
        "event_id": f"x{hours}{account}{chat_id}",
        "account": account,
        "observed_at": T0 + timedelta(hours=hours),
        "source": "live",
        "chat_id": chat_id,
    }


# Hand-written sequences, one per rule that random sequences hit only now and then; they run
# first in every profile.
SCENARIOS: Final[dict[str, list[AnyEvent]]] = {
    "deletes observed out of log order keep the earliest time": [
        MessagePosted(message=_snap(1), **_at(0)),
        MessageDeleted(message_id=1, **_at(3)),
        MessageDeleted(message_id=1, **_at(1, "b")),
    ],
    "an edit before its post wins": [
        MessageEdited(message=_snap(1, "b", edit_h=2), **_at(2)),
        MessagePosted(message=_snap(1, "a"), **_at(0)),
    ],
    "a formatting-only edit and a -> b -> a count as edits": [
        MessagePosted(message=_snap(1, "a"), **_at(0)),
        MessageEdited(
            message=_snap(1, "a", edit_h=1, entities=(Entity(type="bold", offset=0, length=1),)),
            **_at(1),
        ),
        MessageEdited(message=_snap(2, "a"), **_at(1)),
        MessageEdited(message=_snap(2, "b", edit_h=2), **_at(2)),
        MessageEdited(message=_snap(2, "a", edit_h=3), **_at(3)),
    ],
    "the original version, as first seen, is recorded when a second content arrives": [
        MessagePosted(message=_snap(1, media=Media(type="webpage", url="u", title="t0")), **_at(0)),
        MessageEdited(
            message=_snap(1, edit_h=1, media=Media(type="webpage", url="u", title="t1")), **_at(1)
        ),
        MessagePosted(message=_snap(2, "a"), **_at(1)),
        MessageEdited(message=_snap(1, "b", edit_h=2), **_at(2)),
    ],
    "a leave before any message still gives the chat a row": [
        ChatLeft(reason="kicked", **_at(1, chat_id=BASIC)),
        MessagePosted(message=_snap(1), **_at(2, chat_id=BASIC)),
    ],
    "a delete without chat id waits for the account's message": [
        MessageDeleted(message_id=2, **_at(1, "b", None)),
        MessagePosted(message=_snap(2), **_at(0, "b", PRIVATE)),
        MessagePosted(message=_snap(2), **_at(0, "b", CHANNEL)),
    ],
    "reactions and stored media follow seq around the snapshot": [
        ReactionsUpdated(message_id=1, reactions=(ReactionCount(count=9, emoji="x"),), **_at(0)),
        MediaStored(message_id=1, sha256="s0", size=1, path="/m/s0", **_at(0)),
        MessagePosted(message=_snap(1, reactions=(ReactionCount(count=1, emoji="y"),)), **_at(1)),
        ReactionsUpdated(message_id=1, reactions=(ReactionCount(count=2, emoji="y"),), **_at(2)),
        MediaStored(message_id=1, sha256="s1", size=1, path="/m/s1", **_at(2)),
        MessageEdited(message=_snap(1, edit_h=1), **_at(3)),
    ],
    "a late-arriving old title loses to the newer name": [
        ChatDiscovered(
            chat=ChatInfo(chat_id=BASIC, kind="group", title="now"), **_at(3, "a", BASIC)
        ),
        MessagePosted(
            message=_snap(1, action=ServiceAction(type="MessageActionChatEditTitle", title="old")),
            **_at(4, "a", BASIC),
        ),
        ChatUpdated(
            chat=ChatInfo(
                chat_id=BASIC, kind="group", title="export", as_of=T0 - timedelta(hours=1)
            ),
            **_at(5, "b", BASIC),
        ),
    ],
    "counters after the snapshot count, before it do not": [
        CountersUpdated(message_id=1, views=3, **_at(0)),
        MessagePosted(message=_snap(1, views=1, forwards=1), **_at(1)),
        CountersUpdated(message_id=1, views=9, **_at(2)),
        CountersUpdated(message_id=1, forwards=4, **_at(3, "b")),
    ],
    "a better or later reading of local dates replaces an earlier one, and is not an edit": [
        BackfillStarted(since=T0, **_at(0)),
        # Message 1: guessed UTC, then --tz Helsinki (2 h earlier), then guessed again (loses).
        # The guessed reading is the chat's last message until the correction moves it back.
        MessagePosted(message=_snap(1, date=_GUESSED, edit_h=3, local_date=_UTC), **_at(1)),
        MediaStored(message_id=1, sha256="s0", size=1, path="/m/s0", **_at(1)),
        MessagePosted(message=_snap(1, edit_h=1, local_date=_HELSINKI, views=4), **_at(2)),
        MessagePosted(message=_snap(1, date=_GUESSED, edit_h=3, local_date=_UTC), **_at(3)),
        # Message 2: a local reading, then the exact date (backfill), then a given zone (loses).
        MessagePosted(message=_snap(2, "b", edit_h=4, local_date=LocalDate()), **_at(1)),
        MessagePosted(message=_snap(2, "c", edit_h=2), **_at(2)),
        MessagePosted(message=_snap(2, "b", edit_h=5, local_date=_HELSINKI), **_at(3)),
    ],
    "a migration link comes from either chat's message and outlives updates without one": [
        MessagePosted(
            message=_snap(1, action=ServiceAction(type="chat_migrate_to", details=_TO_CHANNEL)),
            **_at(1, "a", BASIC),
        ),
        ChatDiscovered(chat=ChatInfo(chat_id=BASIC, kind="group", title="B"), **_at(3, "a", BASIC)),
        # A basic group known only from the supergroup's first message.
        MessagePosted(
            message=_snap(
                2, action=ServiceAction(type="channel_migrate_from", details={"chat_id": 9})
            ),
            **_at(2),
        ),
    ],
    "a chat photo is the newest that names one; a removal shows none": [
        ChatDiscovered(
            chat=ChatInfo(chat_id=BASIC, kind="group", photo_id=5), **_at(1, "a", BASIC)
        ),
        MessagePosted(
            message=_snap(1, date=T0 + timedelta(hours=2), action=_photo(7)), **_at(2, "a", BASIC)
        ),
        ChatUpdated(chat=ChatInfo(chat_id=BASIC, kind="group", title="t"), **_at(3, "a", BASIC)),
        MessagePosted(message=_snap(1, action=_photo(8)), **_at(3)),
        MessagePosted(message=_snap(2, action=ServiceAction(type="chat_delete_photo")), **_at(4)),
        MessagePosted(message=_snap(3, action=ServiceAction(type="chat_edit_photo")), **_at(5)),
    ],
    "an update that names no title keeps the shown one": [
        ChatDiscovered(
            chat=ChatInfo(chat_id=BASIC, kind="group", title="now"), **_at(1, "a", BASIC)
        ),
        # An import's link of the basic group, as of its newest message, without its name.
        ChatUpdated(
            chat=ChatInfo(
                chat_id=BASIC, kind="group", as_of=T0 + timedelta(hours=2), migrated_to=CHANNEL
            ),
            **_at(3, "a", BASIC),
        ),
    ],
    "a chat's account is its first message's until it is discovered": [
        MessagePosted(message=_snap(1), **_at(0, "b")),
        MessagePosted(message=_snap(2), **_at(0, "a")),
        ChatUpdated(chat=ChatInfo(chat_id=BASIC, kind="group", title="t"), **_at(1, chat_id=BASIC)),
        MessagePosted(
            message=_snap(1, action=ServiceAction(type="MessageActionChatEditTitle", title="u")),
            **_at(2, chat_id=BASIC),
        ),
    ],
}
