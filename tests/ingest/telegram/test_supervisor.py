"""The account supervisor: reconnect forever with capped, jittered backoff; stop on an unusable
session; restart a crashed worker. Fake network behind the gateway, real JetStream."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from telethon import errors as tg_errors

from eventlog import EventLog
from ingest.telegram.assignment import ChatAssignment
from ingest.telegram.supervisor import Link, ReconnectPolicy
from ingest.telegram.worker import TelegramAccountWorker
from schemas.events import IngestConnected, IngestFailed, IngestReconnecting
from tests.helpers import wait_until

from .fakes import FakeGateway, TestSleeper
from .logsink import LogSink, read_all
from .test_worker import _config, _gateway, running

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _worker(gw: FakeGateway, log: EventLog) -> TelegramAccountWorker:
    return TelegramAccountWorker(
        account="main",
        gateway=gw,
        log_reader=log,
        config=_config(),
        assignment=ChatAssignment(),
        sleep=TestSleeper(),
    )


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    low = ReconnectPolicy(base_delay_s=1, max_delay_s=300, rand=lambda: 0.0)
    high = ReconnectPolicy(base_delay_s=1, max_delay_s=300, rand=lambda: 1.0)
    assert [low.delay_s(n) for n in (1, 2, 3, 10, 40)] == [0.5, 1.0, 2.0, 150.0, 150.0]
    assert [high.delay_s(n) for n in (1, 2, 3, 10, 40)] == [1.0, 2.0, 4.0, 300.0, 300.0]


def test_attempts_count_until_a_connection_holds() -> None:
    policy = ReconnectPolicy(stable_after_s=60, rand=lambda: 0.0)
    link = Link()
    link.up(T0)
    link.down("lost", T0 + timedelta(seconds=5), policy)
    link.up(T0 + timedelta(seconds=6))
    attempt, _ = link.down("lost", T0 + timedelta(seconds=10), policy)
    assert attempt == 2  # the connection in between did not hold
    link.up(T0 + timedelta(seconds=11))
    attempt, _ = link.down("lost", T0 + timedelta(seconds=80), policy)
    assert attempt == 1  # it held for 69 s: the counter starts over
    assert link.reconnects == 2


async def test_failed_connects_are_retried_with_backoff_until_one_succeeds(
    event_log: EventLog,
) -> None:
    gw = _gateway()
    gw.fail["connect"] = [ConnectionError("no route")] * 10  # two rounds of the limiter's 5 tries
    worker = _worker(gw, event_log)
    async with LogSink(event_log) as sink, running(worker, sink):
        status = worker.status()
        await sink.flush()
    events = await read_all(event_log, subjects=["tg.ops.main"])
    tries = [e for e in events if isinstance(e, IngestReconnecting)]
    assert [e.attempt for e in tries] == [1, 2]
    assert 0.5 <= tries[0].delay_s <= 1.0 and 1.0 <= tries[1].delay_s <= 2.0
    assert tries[0].error is not None and "RetriesExhausted" in tries[0].error
    assert sum(isinstance(e, IngestConnected) for e in events) == 1
    assert (status.state, status.connected, status.reconnect_attempts) == ("connected", True, 2)


async def test_an_unusable_session_stops_the_account_with_a_clear_status(
    event_log: EventLog,
) -> None:
    gw = _gateway()
    gw.fail["connect"] = [tg_errors.AuthKeyUnregisteredError(request=None)]
    worker = _worker(gw, event_log)
    async with LogSink(event_log) as sink:
        await asyncio.wait_for(worker.run(sink), timeout=10)  # returns: the account stopped
    status = worker.status()
    assert status.state == "auth_failed" and not status.connected
    assert status.last_error is not None and "AuthKeyUnregisteredError" in status.last_error
    failed = [e for e in await read_all(event_log) if isinstance(e, IngestFailed)]
    assert [e.error for e in failed] == ["AccountUnusable"]
    assert [c for c, _ in gw.calls].count("connect") == 1


async def test_a_crashed_worker_is_restarted(event_log: EventLog) -> None:
    gw = _gateway()
    gw.fail["get_dialogs"] = [RuntimeError("a bug")]
    worker = _worker(gw, event_log)
    task = asyncio.create_task(worker.run(sink := LogSink(event_log)))
    try:
        async with sink:
            await wait_until(lambda: [c for c, _ in gw.calls].count("connect") == 2, timeout=10)
            await asyncio.wait_for(worker.ready.wait(), timeout=10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tries = [e for e in await read_all(event_log) if isinstance(e, IngestReconnecting)]
    assert [(e.attempt, e.error) for e in tries] == [(1, "RuntimeError")]
