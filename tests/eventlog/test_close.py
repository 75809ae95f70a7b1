"""Closing the log always releases its connection, also when nats-py's own close is cut short."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal

import psutil
import pytest

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog, EventLogClosed, EventLogUnavailable
from schemas.commands import Command, CommandReply, ReportStatus
from tests.helpers import posted, wait_until


def open_connections_to(port: int) -> list[object]:
    """This process's TCP connections to ``port`` that are still open."""
    return [
        c
        for c in psutil.Process(os.getpid()).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port
    ]


async def test_close_releases_the_socket_when_the_server_is_stalled(
    nats_server: NatsServer,
) -> None:
    log = await EventLog.connect(nats_server.url, ack_timeout_s=1.0, append_deadline_s=2.0)
    assert nats_server.process is not None
    assert open_connections_to(nats_server.port)
    nats_server.process.send_signal(signal.SIGSTOP)
    try:
        big = "x" * 400_000  # 80 of them: more than the socket's buffers take from a stalled peer
        appending = asyncio.create_task(
            log.append_many([posted(-1001, i, text=big) for i in range(1, 81)])
        )
        await asyncio.sleep(0)
        await log.close()
        assert open_connections_to(nats_server.port) == []
    finally:
        nats_server.process.send_signal(signal.SIGCONT)
        appending.cancel()
        with contextlib.suppress(BaseException):
            await appending


async def test_append_after_close_fails_at_once_with_log_closed(nats_server: NatsServer) -> None:
    log = await EventLog.connect(nats_server.url, append_deadline_s=30.0)
    await log.append(posted(-1001, 1))  # the ack inbox is subscribed before the close
    await log.close()
    events = [posted(-1001, 2), posted(-1001, 3)]
    with pytest.raises(EventLogClosed) as info:
        await asyncio.wait_for(log.append_many(events), timeout=5)
    assert info.value.unacked == events


async def test_first_append_after_close_fails_with_log_closed(nats_server: NatsServer) -> None:
    log = await EventLog.connect(nats_server.url, append_deadline_s=30.0)
    await log.close()
    with pytest.raises(EventLogClosed):
        await asyncio.wait_for(log.append(posted(-1001, 1)), timeout=5)


async def test_append_stalled_when_the_log_closes_fails_with_log_closed(
    nats_server: NatsServer,
) -> None:
    log = await EventLog.connect(nats_server.url, ack_timeout_s=1.0, append_deadline_s=30.0)
    assert nats_server.process is not None
    events = [posted(-1001, i) for i in range(1, 11)]
    nats_server.process.send_signal(signal.SIGSTOP)
    try:
        appending = asyncio.create_task(log.append_many(events))
        await asyncio.sleep(0)
        await log.close()
        with pytest.raises(EventLogClosed) as info:
            await asyncio.wait_for(appending, timeout=10)  # far less than its 30 s deadline
        assert info.value.unacked == events
    finally:
        nats_server.process.send_signal(signal.SIGCONT)


async def test_serving_after_close_fails_with_our_error(nats_server: NatsServer) -> None:
    log = await EventLog.connect(nats_server.url)
    await log.close()

    async def handler(command: Command) -> CommandReply:
        return CommandReply(ok=True)

    with pytest.raises(EventLogUnavailable, match="closed"):
        await log.serve("aaltohub.cmd.test", handler)


async def test_a_connect_cancelled_while_the_server_stalls_leaves_no_socket(
    nats_server: NatsServer,
) -> None:
    assert nats_server.process is not None
    nats_server.process.send_signal(signal.SIGSTOP)  # the kernel accepts; the server says nothing
    try:
        connecting = asyncio.create_task(EventLog.connect(nats_server.url, connect_timeout_s=30))
        await wait_until(lambda: bool(open_connections_to(nats_server.port)), timeout=10)
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        assert open_connections_to(nats_server.port) == []
    finally:
        nats_server.process.send_signal(signal.SIGCONT)


async def test_a_close_that_cuts_a_drain_short_leaves_no_unretrieved_error(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    server_log = await EventLog.connect(nats_server.url)
    client_log = await EventLog.connect(nats_server.url)
    release = asyncio.Event()

    async def stuck(command: Command) -> CommandReply:
        await release.wait()  # the subscription cannot drain while its handler runs
        return CommandReply(ok=True)

    try:
        await server_log.serve("aaltohub.cmd.test", stuck)
        asking = asyncio.create_task(
            client_log.request("aaltohub.cmd.test", ReportStatus(), timeout_s=30)
        )
        await asyncio.sleep(0.5)
        await server_log.close()
        release.set()
        gc.collect()
        await asyncio.sleep(0)
        gc.collect()
        assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    finally:
        release.set()
        asking.cancel()
        with contextlib.suppress(BaseException):
            await asking
        await client_log.close()
