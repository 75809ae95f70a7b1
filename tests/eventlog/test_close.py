"""Closing the log always releases its connection, also when nats-py's own close is cut short."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import psutil

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog
from tests.helpers import posted


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
