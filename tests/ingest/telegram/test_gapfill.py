"""Gap-fill against the fake gateway into a real JetStream: missing, edited and deleted; no duplicates."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from eventlog import EventLog
from ingest.telegram.gapfill import GapFiller
from ingest.telegram.gateway import PeerRef
from ingest.telegram.handlers import LiveHandler
from ingest.telegram.known import MessageIndex, ObservingSink
from ingest.telegram.logstate import load_log_state
from ingest.telegram.ratelimit import RateLimiter
from schemas import ids
from schemas.events import (
    GapFillCompleted,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    MessageSnapshot,
)

from .fakes import FakeGateway, Sleeps
from .logsink import LogSink, read_all
from .tl import BASE, CHANNEL_MARKED, channel_message, new_channel

NOW = BASE + timedelta(hours=5)
PEER = PeerRef(peer_id=CHANNEL_MARKED, kind="channel", access_hash=1, chat_kind="supergroup")


def _when(i: int) -> datetime:
    return NOW - timedelta(minutes=50) + timedelta(minutes=i)


def _gapfiller(gw: FakeGateway, sink: LogSink, index: MessageIndex, now: datetime) -> GapFiller:
    async def resolve(chat_id: int) -> PeerRef:
        return PEER

    return GapFiller(
        account="main",
        gateway=gw,
        limiter=RateLimiter(account="main", emit=sink.submit, sleep=Sleeps()),
        resolve=resolve,
        sink=ObservingSink(sink, index),
        index=index,
        window_s=3600,
        max_messages=500,
        clock=lambda: now,
    )


async def _seed_live(event_log: EventLog, index: MessageIndex) -> FakeGateway:
    """The log saw 1–8 live; Telegram now has 5 edited, 3 deleted, 9–10 never seen, 0 outside the window."""
    live = [channel_message(i, f"m{i}", date=_when(i)) for i in range(1, 9)]
    async with LogSink(event_log) as sink:
        handler = LiveHandler(
            account="main",
            sink=ObservingSink(sink, index),
            is_watched=lambda c: True,
            chat_for_deleted=index.chat_for_deleted,
        )
        for m in live:
            handler(new_channel(m))
    now_msgs = [channel_message(0, "old", date=NOW - timedelta(hours=3))]
    now_msgs += [m for m in live if m.id not in (3, 5)]
    now_msgs.append(channel_message(5, "m5 edited", date=_when(5), edit_date=_when(30)))
    now_msgs += [channel_message(i, f"m{i}", date=_when(i)) for i in (9, 10)]
    return FakeGateway(dialogs=[PEER], chats={CHANNEL_MARKED: now_msgs})


async def test_gapfill_appends_missing_edited_and_deleted_messages(event_log: EventLog) -> None:
    index = MessageIndex(account="main")
    gw = await _seed_live(event_log, index)
    async with LogSink(event_log) as sink:
        result = await _gapfiller(gw, sink, index, NOW).run(CHANNEL_MARKED)
    assert (result.fetched, result.new, result.edited, result.deleted) == (9, 2, 1, 1)
    events = [e for e in await read_all(event_log) if e.source == "gapfill"]
    assert sorted(e.message.message_id for e in events if isinstance(e, MessagePosted)) == [9, 10]
    assert [
        e.event_id for e in events if isinstance(e, MessagePosted) and e.message.message_id == 9
    ] == [ids.posted_id(CHANNEL_MARKED, 9, account="main")]
    edits = [e for e in events if isinstance(e, MessageEdited)]
    assert [(e.message.message_id, e.message.text) for e in edits] == [(5, "m5 edited")]
    assert [(e.chat_id, e.message_id) for e in events if isinstance(e, MessageDeleted)] == [
        (CHANNEL_MARKED, 3)
    ]
    assert isinstance(events[-1], GapFillCompleted) and events[-1].window_end == NOW


async def test_gapfill_twice_duplicates_nothing_even_after_a_restart(event_log: EventLog) -> None:
    index = MessageIndex(account="main")
    gw = await _seed_live(event_log, index)
    async with LogSink(event_log) as sink:
        await _gapfiller(gw, sink, index, NOW).run(CHANNEL_MARKED)
    # A restarted worker rebuilds its knowledge from the log only.
    fresh = MessageIndex(account="main")
    await load_log_state(
        event_log,
        account="main",
        index=fresh,
        keep_since=NOW - timedelta(days=2),
        chats=[CHANNEL_MARKED],
    )
    later = NOW + timedelta(minutes=1)
    async with LogSink(event_log) as sink:
        second = await _gapfiller(gw, sink, fresh, later).run(CHANNEL_MARKED)
    assert (second.new, second.edited, second.deleted) == (0, 0, 0)
    events = await read_all(event_log)
    counts = Counter(e.event_id for e in events)
    assert [eid for eid, n in counts.items() if n > 1] == []
    assert sum(isinstance(e, GapFillCompleted) for e in events) == 2


async def test_gapfill_with_a_capped_window_does_not_delete_older_known_messages(
    event_log: EventLog,
) -> None:
    index = MessageIndex(account="main")
    gw = await _seed_live(event_log, index)
    async with LogSink(event_log) as sink:
        gf = _gapfiller(gw, sink, index, NOW)
        gf._max = 3  # only the 3 newest are re-read: 10, 9, 8
        result = await gf.run(CHANNEL_MARKED)
    assert (result.fetched, result.deleted) == (3, 0)


async def test_a_message_missing_from_history_but_still_there_is_not_deleted(
    event_log: EventLog,
) -> None:
    index = MessageIndex(account="main")
    gw = await _seed_live(event_log, index)
    original = gw.get_history

    async def history_without_4(*a: object, **kw: object) -> object:
        page = await original(*a, **kw)  # type: ignore[arg-type]
        page.messages[:] = [m for m in page.messages if m.id != 4]
        return page

    gw.get_history = history_without_4  # type: ignore[method-assign, assignment]
    async with LogSink(event_log) as sink:
        result = await _gapfiller(gw, sink, index, NOW).run(CHANNEL_MARKED)
    assert result.deleted == 1  # only message 3, which get_messages confirms is gone
    assert [kw["ids"] for m, kw in gw.calls if m == "get_messages"] == [[3, 4]]


def test_another_accounts_delete_without_chat_id_leaves_ours_alone() -> None:
    index = MessageIndex(account="main")
    snap = MessageSnapshot(message_id=7, date=NOW)
    index.observe(
        MessagePosted(
            event_id=ids.posted_id(-555, 7, account="main"),
            account="main",
            observed_at=NOW,
            source="live",
            chat_id=-555,
            message=snap,
        )
    )
    index.observe(
        MessageDeleted(
            event_id=ids.deleted_id(account="other", chat_id=None, message_id=7),
            account="other",
            observed_at=NOW,
            source="live",
            message_id=7,
        )
    )
    known = index.get(-555, 7)
    assert known is not None and not known.deleted
