"""The account worker end to end: fake gateway → worker → real JetStream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from telethon import errors as tg_errors
from telethon.tl import types

from eventlog import EventLog
from ingest.telegram.assignment import ChatAssignment
from ingest.telegram.gateway import PeerRef
from ingest.telegram.media import LocalMediaStore
from ingest.telegram.worker import TelegramAccountWorker, WorkerConfig
from schemas.commands import RestartCrawler, TriggerCrawl
from schemas.events import (
    BackfillCompleted,
    ChatDiscovered,
    ChatLeft,
    Event,
    FloodWaited,
    GapFillCompleted,
    IngestConnected,
    IngestDisconnected,
    IngestFailed,
    IngestReconnecting,
    MediaStored,
    MessageDeleted,
    MessagePosted,
)
from tests.helpers import wait_until

from .fakes import FakeGateway, TestSleeper
from .logsink import LogSink, read_all

NOW = datetime.now(UTC).replace(microsecond=0)
SUPER = -1_000_000_000_321
BASIC = -654
DIALOGS = [
    PeerRef(
        peer_id=SUPER, kind="channel", access_hash=7, title="Aalto devs", chat_kind="supergroup"
    ),
    PeerRef(peer_id=BASIC, kind="chat", title="Study group", chat_kind="group"),
    PeerRef(peer_id=4242, kind="user", access_hash=1, title="Alice", chat_kind="private"),
    PeerRef(
        peer_id=-1_000_000_000_999,
        kind="channel",
        access_hash=1,
        title="Left one",
        chat_kind="channel",
        active=False,
    ),
]


def _msg(chat: int, mid: int, minutes_ago: float, text: str = "x", **kw: object) -> types.Message:
    peer = (
        types.PeerChannel(-chat - 1_000_000_000_000)
        if chat < -1_000_000_000_000
        else types.PeerChat(-chat)
    )
    return types.Message(
        id=mid,
        peer_id=peer,
        date=NOW - timedelta(minutes=minutes_ago),
        message=text,
        from_id=types.PeerUser(5),
        **kw,
    )


def _gateway() -> FakeGateway:
    return FakeGateway(
        dialogs=DIALOGS,
        chats={
            SUPER: [_msg(SUPER, i, 100 - i) for i in range(1, 4)],
            BASIC: [_msg(BASIC, 500 + i, 90 - i) for i in range(1, 3)],
        },
    )


def _config(**kw: object) -> WorkerConfig:
    base: dict[str, object] = {
        "discovery_interval_s": 10_000,
        "gapfill_interval_s": 100_000,
        "backfill_pause_s": 0.0,
        "connection_check_s": 10_000,
    }
    base.update(kw)
    return WorkerConfig(**base)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(
    worker: TelegramAccountWorker, sink: LogSink
) -> AsyncIterator[TelegramAccountWorker]:
    task = asyncio.create_task(worker.run(sink))
    try:
        await asyncio.wait_for(worker.ready.wait(), timeout=10)
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _worker(
    gw: FakeGateway,
    log: EventLog,
    *,
    account: str = "main",
    assignment: ChatAssignment | None = None,
    config: WorkerConfig | None = None,
    **kw: Any,
) -> TelegramAccountWorker:
    return TelegramAccountWorker(
        account=account,
        gateway=gw,
        log_reader=log,
        config=config or _config(),
        assignment=assignment or ChatAssignment(),
        sleep=TestSleeper(),
        **kw,
    )


def _of(events: list[Event], kind: type[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


async def test_worker_discovers_backfills_and_records_live_updates(event_log: EventLog) -> None:
    gw = _gateway()
    async with LogSink(event_log) as sink, running(_worker(gw, event_log), sink) as worker:
        await wait_until(lambda: len(_of(sink.submitted, BackfillCompleted)) == 2, timeout=10)
        gw.push(
            types.UpdateNewChannelMessage(message=_msg(SUPER, 4, 0, "live!"), pts=1, pts_count=1)
        )
        gw.push(
            types.UpdateNewChannelMessage(
                message=_msg(-1_000_000_000_777, 1, 0), pts=1, pts_count=1
            )
        )
        gw.push(types.UpdateDeleteMessages(messages=[501], pts=2, pts_count=1))
        status = worker.status()
        await sink.flush()
    events = await read_all(event_log)
    assert sorted(e.chat_id or 0 for e in _of(events, ChatDiscovered)) == sorted([SUPER, BASIC])
    posted = {(e.chat_id, e.message.message_id, e.source) for e in _of(events, MessagePosted)}  # type: ignore[attr-defined]
    assert posted == {
        (SUPER, 1, "backfill"),
        (SUPER, 2, "backfill"),
        (SUPER, 3, "backfill"),
        (BASIC, 501, "backfill"),
        (BASIC, 502, "backfill"),
        (SUPER, 4, "live"),
    }
    assert [(e.chat_id, e.message_id) for e in _of(events, MessageDeleted)] == [(BASIC, 501)]  # type: ignore[attr-defined]
    assert status.connected and status.groups_watched == 2


async def test_restarted_worker_skips_completed_backfills_and_known_chats(
    event_log: EventLog,
) -> None:
    gw = _gateway()
    async with LogSink(event_log) as sink, running(_worker(gw, event_log), sink):
        await wait_until(lambda: len(_of(sink.submitted, BackfillCompleted)) == 2, timeout=10)
    first = len(await read_all(event_log))
    gw.calls.clear()
    async with LogSink(event_log) as sink, running(_worker(gw, event_log), sink):
        await sink.flush()
    events = await read_all(event_log)
    assert len(_of(events, ChatDiscovered)) == 2 and len(_of(events, BackfillCompleted)) == 2
    assert [c for c, _ in gw.calls if c == "get_history"] == []
    assert len(events) - first == 2  # only the new connected/disconnected occurrences


async def test_vanished_group_becomes_chat_left(event_log: EventLog) -> None:
    gw = _gateway()
    worker = _worker(gw, event_log, config=_config(discovery_interval_s=0.05))
    async with LogSink(event_log) as sink, running(worker, sink):
        await wait_until(lambda: len(_of(sink.submitted, BackfillCompleted)) == 2, timeout=10)
        gw.dialogs = [d for d in DIALOGS if d.peer_id != BASIC]
        await wait_until(lambda: len(_of(sink.submitted, ChatLeft)) == 1, timeout=10)
        gw.push(types.UpdateNewMessage(message=_msg(BASIC, 600, 0), pts=3, pts_count=1))
        await sink.flush()
    events = await read_all(event_log)
    assert [e.chat_id for e in _of(events, ChatLeft)] == [BASIC]
    assert not [e for e in _of(events, MessagePosted) if e.message.message_id == 600]  # type: ignore[attr-defined]


async def test_each_group_is_crawled_by_exactly_one_account(event_log: EventLog) -> None:
    assignment = ChatAssignment(explicit={SUPER: "second"})
    gw1, gw2 = _gateway(), _gateway()
    async with LogSink(event_log) as sink:
        async with (
            running(_worker(gw1, event_log, account="main", assignment=assignment), sink),
            running(_worker(gw2, event_log, account="second", assignment=assignment), sink),
        ):
            await wait_until(lambda: len(_of(sink.submitted, BackfillCompleted)) == 2, timeout=10)
    owners = {(e.chat_id, e.account) for e in _of(await read_all(event_log), ChatDiscovered)}
    assert owners == {(SUPER, "second"), (BASIC, "main")}


async def test_trigger_gapfill_command_runs_a_pass(event_log: EventLog) -> None:
    gw = _gateway()
    async with LogSink(event_log) as sink, running(_worker(gw, event_log), sink) as worker:
        await wait_until(lambda: len(_of(sink.submitted, BackfillCompleted)) == 2, timeout=10)
        assert (await worker.handle(TriggerCrawl(chat_id=SUPER, mode="gapfill"))).ok
        assert not (await worker.handle(TriggerCrawl(chat_id=4242, mode="gapfill"))).ok
        await wait_until(lambda: len(_of(sink.submitted, GapFillCompleted)) == 1, timeout=10)
    result = _of(await read_all(event_log), GapFillCompleted)
    assert [(e.chat_id, e.new, e.deleted) for e in result] == [(SUPER, 0, 0)]  # type: ignore[attr-defined]


async def test_flood_wait_shows_in_status_and_the_log(event_log: EventLog) -> None:
    gw = _gateway()
    gw.fail["get_dialogs"] = [tg_errors.FloodWaitError(request=None, capture=30)]
    async with LogSink(event_log) as sink, running(_worker(gw, event_log), sink) as worker:
        await wait_until(lambda: len(_of(sink.submitted, BackfillCompleted)) == 2, timeout=10)
        status = worker.status()
        await sink.flush()
    assert status.last_flood_wait is not None and status.last_flood_wait.seconds == 30
    assert status.flood_waits == 1
    floods = _of(await read_all(event_log, subjects=["tg.ops.main"]), FloodWaited)
    assert [(e.seconds, e.method) for e in floods] == [(30, "messages.getDialogs")]  # type: ignore[attr-defined]


async def test_identical_media_is_stored_once(event_log: EventLog, tmp_path: Path) -> None:
    photo = types.MessageMediaPhoto(
        photo=types.Photo(
            id=1,
            access_hash=1,
            file_reference=b"",
            date=NOW,
            dc_id=1,
            sizes=[types.PhotoSize(type="y", w=10, h=10, size=5)],
        )
    )
    gw = FakeGateway(
        dialogs=DIALOGS[:1],
        chats={SUPER: [_msg(SUPER, 1, 5, media=photo), _msg(SUPER, 2, 4, media=photo)]},
    )
    gw.media = {1: b"same bytes", 2: b"same bytes"}
    worker = _worker(
        gw,
        event_log,
        config=_config(media_types=("photo",)),
        media_store=LocalMediaStore(root=tmp_path / "media"),
    )
    async with LogSink(event_log) as sink, running(worker, sink):
        await wait_until(lambda: len(_of(sink.submitted, MediaStored)) == 2, timeout=10)
        await sink.flush()
    stored = _of(await read_all(event_log), MediaStored)
    assert len({e.sha256 for e in stored}) == 1 and len({e.path for e in stored}) == 1  # type: ignore[attr-defined]
    assert [p for p in (tmp_path / "media").rglob("*") if p.is_file()] == [Path(stored[0].path)]  # type: ignore[attr-defined]


async def test_reconnect_after_telethon_gave_up_is_recorded(event_log: EventLog) -> None:
    gw = _gateway()
    worker = _worker(gw, event_log, config=_config(connection_check_s=0.01))
    async with LogSink(event_log) as sink, running(worker, sink):
        gw.connected = False  # Telethon gave up reconnecting by itself
        await wait_until(lambda: sum(c == "connect" for c, _ in gw.calls) == 2, timeout=10)
        status = worker.status()
        await sink.flush()
    ops = [type(e) for e in await read_all(event_log, subjects=["tg.ops.main"])]
    assert ops[:4] == [IngestConnected, IngestDisconnected, IngestReconnecting, IngestConnected]
    assert (status.state, status.reconnects, status.reconnect_attempts) == ("connected", 1, 1)


async def test_restart_command_reconnects(event_log: EventLog) -> None:
    gw = _gateway()
    worker = _worker(gw, event_log)
    async with LogSink(event_log) as sink, running(worker, sink):
        assert (await worker.handle(RestartCrawler())).ok
        await wait_until(
            lambda: sum(c == "connect" for c, _ in gw.calls) == 2 and worker.ready.is_set(),
            timeout=10,
        )
        gw.push(
            types.UpdateNewChannelMessage(
                message=_msg(SUPER, 9, 0, "after restart"), pts=1, pts_count=1
            )
        )
        await sink.flush()
    assert len(gw.handlers) == 1
    assert sum(isinstance(e, IngestConnected) for e in await read_all(event_log)) == 2
    live = [e for e in sink.submitted if isinstance(e, MessagePosted) and e.source == "live"]
    assert [e.message.message_id for e in live] == [9]


async def test_long_flood_during_backfill_is_recorded_and_the_backfill_resumes_later(
    event_log: EventLog,
) -> None:
    gw = _gateway()
    gw.fail["get_history"] = [tg_errors.FloodWaitError(request=None, capture=7200)]
    sleeper = TestSleeper(forever_s=50_000)
    config = _config(
        discovery_interval_s=100_000, gapfill_interval_s=1_000_000, connection_check_s=100_000
    )
    worker = TelegramAccountWorker(
        account="main",
        gateway=gw,
        log_reader=event_log,
        config=config,
        assignment=ChatAssignment(),
        sleep=sleeper,
    )
    async with LogSink(event_log) as sink, running(worker, sink):
        await wait_until(lambda: len(_of(sink.submitted, BackfillCompleted)) == 2, timeout=10)
        await sink.flush()
    events = await read_all(event_log)
    assert [e.seconds for e in _of(events, FloodWaited)] == [7200]  # type: ignore[attr-defined]
    assert [e.error.split(":")[:2] for e in _of(events, IngestFailed)] == [  # type: ignore[attr-defined]
        ["backfill failed", " FloodWaitTooLong"]
    ]
    assert (
        7200 in sleeper.delays
    )  # the resume was scheduled after the wait, not slept inside Telethon


async def test_a_failed_backfill_is_recorded_for_its_chat_and_retried(event_log: EventLog) -> None:
    gw = _gateway()
    gw.fail["get_history"] = [tg_errors.ChannelPrivateError(request=None)]
    async with LogSink(event_log) as sink, running(_worker(gw, event_log), sink):
        await wait_until(lambda: len(_of(sink.submitted, BackfillCompleted)) == 2, timeout=10)
        await sink.flush()
    events = await read_all(event_log)
    (failed,) = _of(events, IngestFailed)
    assert failed.chat_id in (SUPER, BASIC)
    assert failed.error.startswith("backfill failed: GatewayError")  # type: ignore[attr-defined]
    assert failed.error.endswith("retry 1 in 60s")  # type: ignore[attr-defined]
    assert {e.chat_id for e in _of(events, BackfillCompleted)} == {SUPER, BASIC}
