"""Catch-up after downtime: the connection drops, Telethon gives up, traffic goes on meanwhile; the
worker reconnects by itself and recovers every post, edit and delete exactly once. Real JetStream,
real Postgres (the update state), the fake network serving differences."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

from telethon.tl import types

from aaltohub.migrate import apply_migrations
from eventlog import EventLog
from ingest.telegram.assignment import ChatAssignment
from ingest.telegram.updatestate import UpdateStateStore
from ingest.telegram.worker import TelegramAccountWorker
from schemas.events import (
    BackfillCompleted,
    CatchUpCompleted,
    Event,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
)
from tests.helpers import wait_until

from .fakes import FakeGateway, TestSleeper
from .logsink import LogSink, read_all
from .test_worker import BASIC, DIALOGS, SUPER, _config

NOW = datetime.now(UTC).replace(microsecond=0)
OUTAGE_START = NOW - timedelta(hours=6)
BEFORE = OUTAGE_START - timedelta(minutes=30)


def _msg(chat: int, mid: int, at: datetime, text: str = "x", **kw: object) -> types.Message:
    peer = (
        types.PeerChannel(-chat - 1_000_000_000_000)
        if chat < -1_000_000_000_000
        else types.PeerChat(-chat)
    )
    return types.Message(
        id=mid, peer_id=peer, date=at, message=text, from_id=types.PeerUser(5), **kw
    )


def _gateway() -> FakeGateway:
    return FakeGateway(
        dialogs=DIALOGS[:2],
        chats={
            SUPER: [_msg(SUPER, i, BEFORE + timedelta(minutes=i)) for i in (1, 2, 3)],
            BASIC: [_msg(BASIC, 500 + i, BEFORE + timedelta(minutes=i)) for i in (1, 2)],
        },
    )


def _worker(gw: FakeGateway, log: EventLog, database_url: str) -> TelegramAccountWorker:
    return TelegramAccountWorker(
        account="main",
        gateway=gw,
        log_reader=log,
        config=_config(connection_check_s=0.01, catchup_pause_s=0.0, catchup_interval_s=100_000),
        assignment=ChatAssignment(),
        update_states=UpdateStateStore(database_url=database_url),
        sleep=TestSleeper(),
    )


@contextlib.asynccontextmanager
async def crawling(worker: TelegramAccountWorker, sink: LogSink) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run(sink))
    try:
        await asyncio.wait_for(worker.ready.wait(), timeout=15)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _outage_traffic(gw: FakeGateway) -> None:
    """Six hours of posts, edits and deletes in both chats while the account is offline."""
    up = gw.updates
    for hour in range(6):
        at = OUTAGE_START + timedelta(hours=hour)
        up.post(_msg(SUPER, 10 + hour, at, f"channel post {hour}"))
        up.post(_msg(BASIC, 600 + hour, at, f"group post {hour}"))
    old = BEFORE + timedelta(minutes=2)
    up.edit(_msg(SUPER, 2, old, "edited old", edit_date=NOW - timedelta(hours=3)))
    new = OUTAGE_START + timedelta(hours=1)
    up.edit(_msg(SUPER, 11, new, "edited new", edit_date=NOW - timedelta(hours=1)))
    up.delete(SUPER, [3, 12])
    up.delete(BASIC, [502])


def _posted_counts(events: Sequence[Event]) -> Counter[tuple[int | None, int]]:
    return Counter(
        (e.chat_id, e.message.message_id) for e in events if isinstance(e, MessagePosted)
    )


async def _outage_then_reconnect(
    gw: FakeGateway, worker: TelegramAccountWorker, sink: LogSink, *, too_long: bool
) -> None:
    await wait_until(
        lambda: len([e for e in sink.submitted if isinstance(e, BackfillCompleted)]) == 2
    )
    gw.reachable.clear()  # the network is gone: Telethon gives up, our reconnects wait
    gw.connected = False
    await wait_until(lambda: worker.status().state == "reconnecting", timeout=10)
    _outage_traffic(gw)
    if too_long:
        gw.updates.forget_before_now()
    gw.reachable.set()

    def caught_up_again() -> bool:
        catch_up = worker.status().catch_up
        return catch_up is not None and catch_up.passes == 2 and catch_up.state == "idle"

    await wait_until(caught_up_again, timeout=15)
    await sink.flush()


async def test_reconnect_after_an_outage_recovers_every_post_edit_and_delete_once(
    event_log: EventLog, database_url: str
) -> None:
    apply_migrations(database_url)
    gw = _gateway()
    worker = _worker(gw, event_log, database_url)
    async with LogSink(event_log) as sink, crawling(worker, sink):
        await _outage_then_reconnect(gw, worker, sink, too_long=False)
    events = await read_all(event_log)
    posted = _posted_counts(events)
    outage = {(SUPER, 10 + h) for h in range(6)} | {(BASIC, 600 + h) for h in range(6)}
    assert outage <= set(posted) and set(posted.values()) == {1}
    caught = [e for e in events if e.source == "catchup"]
    edits = {(e.chat_id, e.message.message_id) for e in caught if isinstance(e, MessageEdited)}
    assert edits == {(SUPER, 2), (SUPER, 11)}  # an old message and one posted offline
    deletes = {(e.chat_id, e.message_id) for e in caught if isinstance(e, MessageDeleted)}
    assert deletes == {(SUPER, 3), (SUPER, 12), (BASIC, 502)}
    results = {e.chat_id: e for e in events if isinstance(e, CatchUpCompleted)}
    assert (results[SUPER].new, results[SUPER].edited, results[SUPER].deleted) == (6, 2, 2)
    assert (results[BASIC].new, results[BASIC].deleted) == (6, 1)
    assert not results[SUPER].too_long


async def test_too_long_difference_reads_history_forward_from_the_newest_held_message(
    event_log: EventLog, database_url: str
) -> None:
    apply_migrations(database_url)
    gw = _gateway()
    worker = _worker(gw, event_log, database_url)
    async with LogSink(event_log) as sink, crawling(worker, sink):
        await _outage_then_reconnect(gw, worker, sink, too_long=True)
    events = await read_all(event_log)
    posted = _posted_counts(events)
    # Message 12 was posted and deleted offline: the history no longer shows it.
    outage = {(SUPER, 10 + h) for h in range(6) if h != 2} | {(BASIC, 600 + h) for h in range(6)}
    assert outage <= set(posted) and set(posted.values()) == {1}
    history_reads = [kw for c, kw in gw.calls if c == "get_history" and kw.get("offset_id") == 3]
    assert history_reads and history_reads[0]["reverse"] is True  # from SUPER's newest held id
    results = {e.chat_id: e for e in events if isinstance(e, CatchUpCompleted)}
    assert results[SUPER].too_long and results[SUPER].new == 5
    assert results[BASIC].too_long and results[BASIC].new == 6


class UnackedSink(LogSink):
    """Takes live events but never gets a batch acknowledged: the process dies before the ack."""

    async def submit_many(self, events: Sequence[Event]) -> None:
        self.submitted.extend(events)
        await asyncio.Event().wait()


async def test_a_crash_before_the_ack_loses_nothing_after_restart(
    event_log: EventLog, database_url: str
) -> None:
    apply_migrations(database_url)
    gw = _gateway()
    store = UpdateStateStore(database_url=database_url)
    async with LogSink(event_log) as sink, crawling(_worker(gw, event_log, database_url), sink):
        await wait_until(
            lambda: len([e for e in sink.submitted if isinstance(e, BackfillCompleted)]) == 2
        )
    stored = await store.load("main")
    gw.connected = False
    _outage_traffic(gw)
    doomed = _worker(gw, event_log, database_url)
    async with UnackedSink(event_log) as unacked:
        task = asyncio.create_task(doomed.run(unacked))
        await wait_until(lambda: any(e.source == "catchup" for e in unacked.submitted), timeout=10)
        task.cancel()  # the crash: the catch-up's events were received, never acked
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await store.load("main") == stored  # the state did not move past unacked events
    async with LogSink(event_log) as sink, crawling(_worker(gw, event_log, database_url), sink):
        await sink.flush()
    posted = _posted_counts(await read_all(event_log))
    outage = {(SUPER, 10 + h) for h in range(6)} | {(BASIC, 600 + h) for h in range(6)}
    assert outage <= set(posted) and set(posted.values()) == {1}
