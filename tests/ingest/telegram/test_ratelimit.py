"""Flood waits are honoured and recorded as events in the log; transient errors back off 1→2→4→8 s."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from telethon import errors as tg_errors

from eventlog import EventLog
from ingest.errors import FloodWaitTooLong, GatewayError, RetriesExhausted
from ingest.telegram.gateway import PeerRef
from ingest.telegram.ratelimit import RateLimiter
from schemas.events import FloodWaited

from .fakes import FakeGateway, Sleeps
from .logsink import LogSink, read_all
from .tl import CHANNEL_MARKED, channel_message

PEER = PeerRef(peer_id=CHANNEL_MARKED, kind="channel", access_hash=1)


async def test_flood_wait_is_waited_for_recorded_and_the_request_retried(
    event_log: EventLog,
) -> None:
    gw = FakeGateway(chats={CHANNEL_MARKED: [channel_message(1)]})
    gw.fail["get_history"] = [tg_errors.FloodWaitError(request=None, capture=42)]
    sleeps = Sleeps()
    async with LogSink(event_log) as sink:
        limiter = RateLimiter(account="main", emit=sink.submit, sleep=sleeps)
        page = await limiter.call(
            "messages.getHistory",
            lambda: gw.get_history(PEER, limit=10),
            chat_id=CHANNEL_MARKED,
            source="backfill",
        )
    assert [m.id for m in page.messages] == [1]
    assert sleeps.delays == [43.0]  # the wait Telegram asked for, plus a one-second margin
    events = await read_all(event_log, subjects=["tg.ops.main"])
    assert len(events) == 1 and isinstance(events[0], FloodWaited)
    ev = events[0]
    assert (ev.seconds, ev.method, ev.chat_id, ev.source) == (
        42,
        "messages.getHistory",
        CHANNEL_MARKED,
        "backfill",
    )
    assert ev.resume_at - ev.observed_at == timedelta(seconds=43)
    assert limiter.last_flood_wait_s == 42


async def test_flood_wait_longer_than_the_maximum_is_raised_not_slept(event_log: EventLog) -> None:
    gw = FakeGateway()
    gw.fail["get_dialogs"] = [tg_errors.FloodWaitError(request=None, capture=86400)]
    sleeps = Sleeps()
    async with LogSink(event_log) as sink:
        limiter = RateLimiter(account="main", emit=sink.submit, sleep=sleeps, max_flood_wait_s=3600)
        with pytest.raises(FloodWaitTooLong) as info:
            await limiter.call("messages.getDialogs", gw.get_dialogs)
    assert info.value.seconds == 86400 and sleeps.delays == []
    assert [type(e) for e in await read_all(event_log)] == [FloodWaited]


async def test_transient_errors_back_off_exponentially_and_each_attempt_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = FakeGateway()
    gw.fail["get_dialogs"] = [
        tg_errors.ServerError(request=None, message="INTERNAL"),
        ConnectionError("reset"),
        TimeoutError(),
        OSError("net down"),
    ]
    sleeps = Sleeps()
    caplog.set_level(logging.WARNING, logger="ingest.telegram.ratelimit")
    limiter = RateLimiter(account="main", emit=lambda e: None, sleep=sleeps, max_attempts=6)
    assert await limiter.call("messages.getDialogs", gw.get_dialogs) == []
    assert sleeps.delays == [1.0, 2.0, 4.0, 8.0]
    assert len([r for r in caplog.records if "attempt" in r.getMessage()]) == 4


async def test_backoff_is_capped_and_attempts_are_bounded() -> None:
    gw = FakeGateway()
    gw.fail["get_dialogs"] = [ConnectionError("down")] * 10
    sleeps = Sleeps()
    limiter = RateLimiter(account="main", emit=lambda e: None, sleep=sleeps, max_attempts=6)
    with pytest.raises(RetriesExhausted):
        await limiter.call("messages.getDialogs", gw.get_dialogs)
    assert sleeps.delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(gw.calls) == 6


async def test_permanent_rpc_errors_are_translated_without_retry() -> None:
    gw = FakeGateway()
    gw.fail["get_dialogs"] = [tg_errors.ChannelPrivateError(request=None)]
    sleeps = Sleeps()
    limiter = RateLimiter(account="main", emit=lambda e: None, sleep=sleeps)
    with pytest.raises(GatewayError) as info:
        await limiter.call("messages.getDialogs", gw.get_dialogs)
    assert isinstance(info.value.__cause__, tg_errors.ChannelPrivateError)
    assert sleeps.delays == [] and len(gw.calls) == 1


class HeldSleep:
    """A sleeper that blocks every sleep until the test releases it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.started.set()
        await self.release.wait()


async def test_a_flood_wait_pauses_the_accounts_other_requests_until_it_is_waited_out() -> None:
    gw = FakeGateway(chats={CHANNEL_MARKED: [channel_message(1)]})
    gw.fail["get_history"] = [tg_errors.FloodWaitError(request=None, capture=30)]
    sleep = HeldSleep()
    limiter = RateLimiter(account="main", emit=lambda e: None, sleep=sleep)
    flooded = asyncio.create_task(
        limiter.call("messages.getHistory", lambda: gw.get_history(PEER, limit=10))
    )
    await asyncio.wait_for(sleep.started.wait(), 5)
    other = asyncio.create_task(limiter.call("messages.getDialogs", gw.get_dialogs))
    await asyncio.sleep(0)  # let the other request reach the limiter (one loop turn, no waiting)
    assert limiter.paused and not other.done()
    assert "get_dialogs" not in [method for method, _ in gw.calls]
    sleep.release.set()
    assert await asyncio.wait_for(other, 5) == []
    assert [m.id for m in (await asyncio.wait_for(flooded, 5)).messages] == [1]
    assert not limiter.paused
