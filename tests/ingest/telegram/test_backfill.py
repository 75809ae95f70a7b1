"""Backfill against the fake gateway into a real JetStream: window, order, throttle, resume, skip."""

from __future__ import annotations

from datetime import timedelta

from eventlog import EventLog
from ingest.telegram.backfill import Backfiller
from ingest.telegram.gateway import PeerRef
from ingest.telegram.known import MessageIndex, ObservingSink
from ingest.telegram.logstate import LogState, load_log_state
from ingest.telegram.ratelimit import RateLimiter
from schemas.events import (
    BackfillCompleted,
    BackfillProgressed,
    BackfillStarted,
    Event,
    MessagePosted,
)

from .fakes import FakeGateway, Sleeps
from .logsink import LogSink, read_all
from .tl import BASE, CHANNEL_MARKED, at, channel_message

NOW = BASE + timedelta(days=1)
PEER = PeerRef(
    peer_id=CHANNEL_MARKED, kind="channel", access_hash=1, title="Group", chat_kind="supergroup"
)


def _gateway(n: int) -> FakeGateway:
    old = [
        channel_message(i, f"old {i}", date=NOW - timedelta(days=20) + timedelta(minutes=i))
        for i in range(95, 100)
    ]
    recent = [channel_message(100 + i, f"m{i}", date=at(i)) for i in range(n)]
    return FakeGateway(dialogs=[PEER], chats={CHANNEL_MARKED: old + recent})


def _backfiller(
    gw: FakeGateway, sink: LogSink, state: LogState, index: MessageIndex, sleeps: Sleeps
) -> Backfiller:
    async def resolve(chat_id: int) -> PeerRef:
        return PEER

    limiter = RateLimiter(account="main", emit=sink.submit, sleep=sleeps)
    return Backfiller(
        account="main",
        gateway=gw,
        limiter=limiter,
        resolve=resolve,
        sink=ObservingSink(sink, index),
        state=state,
        index=index,
        days=14,
        batch=200,
        pause_s=1.5,
        sleep=sleeps,
        clock=lambda: NOW,
    )


def _posted_ids(events: list[Event]) -> list[int]:
    return [e.message.message_id for e in events if isinstance(e, MessagePosted)]


async def test_backfill_appends_the_window_oldest_first_with_progress(event_log: EventLog) -> None:
    gw, sleeps, index = _gateway(450), Sleeps(), MessageIndex(account="main")
    async with LogSink(event_log) as sink:
        result = await _backfiller(gw, sink, LogState(account="main"), index, sleeps).run(
            CHANNEL_MARKED
        )
    assert result is not None and result.fetched == 450
    events = await read_all(event_log)
    assert _posted_ids(events) == list(range(100, 550))
    assert all(e.source == "backfill" for e in events)
    assert isinstance(events[0], BackfillStarted) and events[0].estimated_total == 450
    progress = [(e.fetched, e.last_message_id) for e in events if isinstance(e, BackfillProgressed)]
    assert progress == [(200, 299), (400, 499), (450, 549)]
    assert isinstance(events[-1], BackfillCompleted) and events[-1].fetched == 450
    assert sleeps.delays == [1.5, 1.5]


async def test_backfill_resumes_after_a_crash_from_the_last_progress(event_log: EventLog) -> None:
    gw, sleeps = _gateway(450), Sleeps()
    pages = 0
    original = gw.get_history

    async def crashing(*a: object, **kw: object):  # type: ignore[no-untyped-def]
        nonlocal pages
        pages += 1
        if (
            pages == 5
        ):  # 2 estimate requests + 2 full pages (200 messages, progress appended), then crash
            raise RuntimeError("process killed")
        return await original(*a, **kw)  # type: ignore[arg-type]

    gw.get_history = crashing  # type: ignore[method-assign]
    async with LogSink(event_log) as sink:
        try:
            await _backfiller(
                gw, sink, LogState(account="main"), MessageIndex(account="main"), sleeps
            ).run(CHANNEL_MARKED)
        except RuntimeError:
            pass
    gw.get_history = original  # type: ignore[method-assign]
    index = MessageIndex(account="main")
    state = await load_log_state(
        event_log, account="main", index=index, keep_since=NOW - timedelta(days=14)
    )
    assert state.chat(CHANNEL_MARKED).backfill is not None
    async with LogSink(event_log) as sink:
        result = await _backfiller(gw, sink, state, index, Sleeps()).run(CHANNEL_MARKED)
    assert result is not None and result.resumed_after == 299
    events = await read_all(event_log)
    assert _posted_ids(events) == list(range(100, 550))  # every message exactly once, in order
    starts = [e.resume_after_message_id for e in events if isinstance(e, BackfillStarted)]
    assert starts == [None, 299]
    assert next(e for e in events if isinstance(e, BackfillCompleted)).fetched == 450


async def test_backfill_is_skipped_when_the_log_records_completion(event_log: EventLog) -> None:
    gw = _gateway(50)
    async with LogSink(event_log) as sink:
        await _backfiller(
            gw, sink, LogState(account="main"), MessageIndex(account="main"), Sleeps()
        ).run(CHANNEL_MARKED)
    before = len(await read_all(event_log))
    index = MessageIndex(account="main")
    state = await load_log_state(
        event_log, account="main", index=index, keep_since=NOW - timedelta(days=14)
    )
    gw.calls.clear()
    async with LogSink(event_log) as sink:
        assert await _backfiller(gw, sink, state, index, Sleeps()).run(CHANNEL_MARKED) is None
    assert gw.calls == []
    assert len(await read_all(event_log)) == before
