"""The durability point: no event stays only in memory longer than ``max_memory_s``, even when the
log stalls (nats-server stopped with SIGSTOP: connections stay open, acks never come)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog
from tests.helpers import posted, wait_until
from tests.ingest.durable.helpers import make_sink, read_events


@pytest.fixture
def stall(nats_server: NatsServer) -> Iterator[NatsServer]:
    """Resumes the nats-server at the end of the test, whatever happened."""
    try:
        yield nats_server
    finally:
        if nats_server.process is not None:
            nats_server.process.send_signal(signal.SIGCONT)


def freeze(server: NatsServer) -> None:
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)


def thaw(server: NatsServer) -> None:
    assert server.process is not None
    server.process.send_signal(signal.SIGCONT)


async def test_a_stalled_log_gets_events_spooled_within_the_memory_bound(
    tmp_path: Path, stall: NatsServer, event_log: EventLog
) -> None:
    # event_log waits up to 20 s for acks: without the bound the batch would sit in memory that long.
    sink = make_sink(tmp_path, event_log, max_memory_s=0.2)
    await sink.start()
    try:
        freeze(stall)
        events = [posted(-1001, i) for i in range(1, 201)]
        await asyncio.wait_for(sink.submit_many(events), timeout=5)
        status = sink.status()
        assert status.appended == 0
        assert status.spool_records == 200
    finally:
        thaw(stall)
        await sink.close()


async def test_a_spooled_batch_the_log_acks_after_all_leaves_the_spool_and_is_stored_once(
    tmp_path: Path, stall: NatsServer, event_log: EventLog
) -> None:
    sink = make_sink(tmp_path, event_log, max_memory_s=0.2)
    await sink.start()
    events = [posted(-1001, i) for i in range(1, 301)]
    try:
        freeze(stall)
        for event in events[:100]:
            sink.submit(event)
        await wait_until(lambda: sink.status().spool_records == 100, timeout=5)
        for event in events[100:]:
            sink.submit(event)  # behind the stalled batch: buffer, then the spool tail
        await wait_until(lambda: sink.status().spool_records == 300, timeout=5)
        thaw(stall)
        await wait_until(
            lambda: sink.status().spool_records == 0 and sink.status().buffer_depth == 0,
            timeout=30,
        )
        stored = [e.event_id for e in await read_events(event_log)]
        assert stored == [e.event_id for e in events]
        assert sink.status().appended == 300  # the spooled copy of the acked batch was not re-sent
    finally:
        thaw(stall)
        await sink.close()
