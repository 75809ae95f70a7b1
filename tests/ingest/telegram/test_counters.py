"""Engagement counters: live view/forward updates become coalesced ``CountersUpdated`` facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from telethon.tl import types

from eventlog import EventLog
from ingest.telegram.convert import snapshot_of
from ingest.telegram.counters import CounterCoalescer, Counts
from ingest.telegram.handlers import LiveHandler
from ingest.telegram.known import MessageIndex, reconcile
from schemas import ids
from schemas.events import CountersUpdated, MessageEdited

from .logsink import LogSink, read_all
from .tl import CHANNEL, CHANNEL_MARKED, channel_message

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_changes_within_a_minute_are_held_and_merged() -> None:
    coalescer = CounterCoalescer()
    key = (CHANNEL_MARKED, 10)
    assert coalescer.offer(key, Counts(views=5), T0) == Counts(views=5)
    assert coalescer.offer(key, Counts(views=7), T0 + timedelta(seconds=20)) is None
    assert coalescer.offer(key, Counts(forwards=2), T0 + timedelta(seconds=30)) is None
    assert coalescer.due(T0 + timedelta(seconds=59)) == []
    assert coalescer.due(T0 + timedelta(seconds=60)) == [(key, Counts(views=7, forwards=2))]
    assert len(coalescer) == 0


def test_a_change_after_a_quiet_minute_is_recorded_at_once() -> None:
    coalescer = CounterCoalescer()
    key = (CHANNEL_MARKED, 10)
    coalescer.offer(key, Counts(views=5), T0)
    assert coalescer.offer(key, Counts(views=9), T0 + timedelta(minutes=2)) == Counts(views=9)


async def test_live_view_updates_are_recorded_at_most_once_a_minute(event_log: EventLog) -> None:
    async with LogSink(event_log) as sink:
        handler = LiveHandler(
            account="main", sink=sink, is_watched=lambda c: True, chat_for_deleted=lambda m: None
        )
        for views in (100, 101, 102):
            handler(types.UpdateChannelMessageViews(channel_id=CHANNEL, id=10, views=views))
        handler(types.UpdateChannelMessageForwards(channel_id=CHANNEL, id=10, forwards=3))
        assert handler.flush_counters(datetime.now(UTC) + timedelta(seconds=61)) == 1
        await sink.flush()
    events = await read_all(event_log)
    assert [(e.views, e.forwards) for e in events if isinstance(e, CountersUpdated)] == [
        (100, None),
        (102, 3),
    ]
    assert {(e.chat_id, e.message_id) for e in events if isinstance(e, CountersUpdated)} == {
        (CHANNEL_MARKED, 10)
    }


def test_gapfill_records_the_counters_it_re_reads() -> None:
    index = MessageIndex(account="main")
    old = snapshot_of(channel_message(10, views=100, forwards=1))
    for event in reconcile(
        index, account="main", chat_id=CHANNEL_MARKED, snap=old, source="live", observed_at=T0
    ):
        index.observe(event)
    fresh = snapshot_of(channel_message(10, views=250, forwards=1))
    (event,) = reconcile(
        index, account="main", chat_id=CHANNEL_MARKED, snap=fresh, source="gapfill", observed_at=T0
    )
    assert isinstance(event, CountersUpdated) and (event.views, event.forwards) == (250, 1)
    assert event.event_id == ids.counters_id(
        CHANNEL_MARKED, 10, views=250, forwards=1, replies=None, account="main"
    )
    index.observe(event)
    assert (
        reconcile(
            index,
            account="main",
            chat_id=CHANNEL_MARKED,
            snap=fresh,
            source="gapfill",
            observed_at=T0,
        )
        == []
    )


def test_an_edit_carries_its_counters_without_a_separate_fact() -> None:
    index = MessageIndex(account="main")
    sink_events = reconcile(
        index,
        account="main",
        chat_id=CHANNEL_MARKED,
        snap=snapshot_of(channel_message(10, views=1)),
        source="live",
        observed_at=T0,
    )
    index.observe(sink_events[0])
    edited = snapshot_of(channel_message(10, "new", views=9, edit_date=T0 + timedelta(hours=1)))
    events = reconcile(
        index, account="main", chat_id=CHANNEL_MARKED, snap=edited, source="gapfill", observed_at=T0
    )
    assert [type(e) for e in events] == [MessageEdited]
