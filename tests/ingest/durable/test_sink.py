"""The durable sink against a real nats-server: outages, overload, refusals, late log."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog
from ingest.durable.breaker import CircuitBreaker
from ingest.durable.deadletter import DeadLetterFile
from schemas.events import IngestFailed
from tests.helpers import posted, wait_until
from tests.ingest.durable.helpers import FakeClock, make_sink, read_events


async def test_submit_many_returns_after_the_log_acked(tmp_path: Path, quick_log: EventLog) -> None:
    sink = make_sink(tmp_path, quick_log)
    await sink.start()
    try:
        events = [posted(-1001, i) for i in range(1, 301)]
        await sink.submit_many(events)
        assert sink.status().appended == 300
        assert [e.event_id for e in await read_events(quick_log)] == [e.event_id for e in events]
    finally:
        await sink.close()


async def test_log_outage_spools_then_drains_every_event_once_in_order(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog
) -> None:
    sink = make_sink(tmp_path, quick_log, retry_interval_s=0.05)
    await sink.start()
    events = [posted(-1001 - i % 3, i) for i in range(1, 1201)]
    try:
        for event in events[:400]:
            sink.submit(event)
        await wait_until(lambda: sink.status().appended >= 200, timeout=10)
        nats_server.stop()
        for event in events[400:800]:
            sink.submit(event)
            await asyncio.sleep(0)  # let the pump run between submissions, like live traffic
        await wait_until(lambda: sink.status().spool_records > 0, timeout=15)
        assert not sink.status().log_connected
        nats_server.start()
        for event in events[800:]:
            sink.submit(event)
        await wait_until(
            lambda: (
                sink.status().spool_records == 0
                and sink.status().buffer_depth == 0
                and quick_log.connected
            ),
            timeout=30,
        )
        stored = [e.event_id for e in await read_events(quick_log)]
        assert stored == [e.event_id for e in events]
    finally:
        await sink.close()


async def test_full_buffer_overflows_to_the_spool(tmp_path: Path) -> None:
    sink = make_sink(tmp_path, None, buffer_size=10)
    await sink.start()
    try:
        for i in range(1, 26):
            sink.submit(posted(-1001, i))
        status = sink.status()
        assert status.spool_records >= 20
        assert status.buffer_depth + status.spool_records == 25
    finally:
        await sink.close()


async def test_events_submitted_before_the_log_is_reachable_reach_it_later(
    tmp_path: Path, quick_log: EventLog
) -> None:
    sink = make_sink(tmp_path, None)
    await sink.start()
    try:
        events = [posted(-1002, i) for i in range(1, 51)]
        await sink.submit_many(events)
        assert sink.status().spool_records == 50
        sink.attach(quick_log)
        await wait_until(lambda: sink.status().spool_records == 0, timeout=10)
        assert [e.event_id for e in await read_events(quick_log)] == [e.event_id for e in events]
    finally:
        await sink.close()


async def test_close_spools_what_the_log_cannot_take_and_a_new_sink_drains_it(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog
) -> None:
    nats_server.stop()
    sink = make_sink(tmp_path, quick_log)
    await sink.start()
    events = [posted(-1003, i) for i in range(1, 101)]
    for event in events:
        sink.submit(event)
    await sink.close(drain_timeout_s=5)
    assert sink.status().spool_records == 100
    nats_server.start()
    await wait_until(lambda: quick_log.connected, timeout=15)
    second = make_sink(tmp_path, quick_log)
    await second.start()
    try:
        await wait_until(lambda: second.status().spool_records == 0, timeout=15)
        assert [e.event_id for e in await read_events(quick_log)] == [e.event_id for e in events]
        assert list((tmp_path / "spool").glob("*.seg")) == []
    finally:
        await second.close()


async def test_refused_event_is_dead_lettered_and_reported(
    tmp_path: Path, quick_log: EventLog
) -> None:
    sink = make_sink(tmp_path, quick_log)
    await sink.start()
    too_big = posted(-1004, 2, text="x" * (9 * 1024 * 1024))
    try:
        await sink.submit_many([posted(-1004, 1), too_big, posted(-1004, 3)])
        await wait_until(lambda: sink.status().appended >= 3, timeout=10)
        stored = await read_events(quick_log)
        assert [e.event_id for e in stored[:2]] == [
            posted(-1004, 1).event_id,
            posted(-1004, 3).event_id,
        ]
        assert isinstance(stored[2], IngestFailed) and too_big.event_id in (stored[2].detail or "")
        letters = DeadLetterFile(tmp_path / "dead-letter" / "spool.jsonl").read()
        assert [d.event_id for d in letters] == [too_big.event_id]
    finally:
        await sink.close()


async def test_open_breaker_spools_without_trying_and_a_probe_drains_in_order(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=5, window_s=60, open_s=30, clock=clock)
    # Connected, but no stream takes the subjects yet: every append fails (503, no responders).
    log = await EventLog.connect(
        nats_server.url, ensure=False, ack_timeout_s=0.1, append_deadline_s=0.2
    )
    sink = make_sink(tmp_path, log, breaker=breaker, retry_interval_s=0.01)
    await sink.start()
    events = [posted(-1005, i) for i in range(1, 41)]
    try:
        for event in events[:20]:
            sink.submit(event)
        await wait_until(lambda: breaker.state == "open", timeout=20)
        for event in events[20:]:
            sink.submit(event)
        await wait_until(lambda: sink.status().spool_records == 40, timeout=5)
        assert sink.status().breaker == "open" and breaker.opened_count == 1
        await log.ensure_stream()
        clock.now += 30
        await wait_until(lambda: sink.status().spool_records == 0, timeout=10)
        assert breaker.state == "closed"
        assert [e.event_id for e in await read_events(log)] == [e.event_id for e in events]
    finally:
        await sink.close()
        await log.close()


async def test_overflow_during_an_outage_keeps_the_order(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog
) -> None:
    # A tiny buffer: while a batch is in flight to a dying server the buffer overflows to the spool,
    # and the failed batch must go in front of what overflowed.
    sink = make_sink(tmp_path, quick_log, buffer_size=30, batch_size=20, retry_interval_s=0.05)
    await sink.start()
    events = [posted(-1006, i) for i in range(1, 901)]
    try:
        for event in events[:100]:
            sink.submit(event)
        await wait_until(lambda: sink.status().appended >= 40, timeout=10)
        nats_server.stop()
        for i, event in enumerate(events[100:700]):
            sink.submit(event)
            if i % 10 == 0:
                await asyncio.sleep(0)  # let the pump run now and then
        await wait_until(lambda: sink.status().buffer_depth == 0, timeout=15)
        nats_server.start()
        for event in events[700:]:
            sink.submit(event)
        await wait_until(
            lambda: (
                sink.status().spool_records == 0
                and sink.status().buffer_depth == 0
                and quick_log.connected
            ),
            timeout=30,
        )
        assert [e.event_id for e in await read_events(quick_log)] == [e.event_id for e in events]
    finally:
        await sink.close()


async def test_a_torn_spool_left_by_a_crash_is_drained_up_to_the_tear(
    tmp_path: Path, quick_log: EventLog
) -> None:
    crashed = make_sink(tmp_path, None)
    await crashed.start()
    events = [posted(-1007, i) for i in range(1, 11)]
    await crashed.submit_many(events)
    await crashed.close()
    (segment,) = (tmp_path / "spool").glob("*.seg")
    segment.write_bytes(
        segment.read_bytes()[:-10]
    )  # the last record was being written at the crash
    sink = make_sink(tmp_path, quick_log)
    await sink.start()
    try:
        await wait_until(lambda: sink.status().spool_records == 0, timeout=10)
        assert [e.event_id for e in await read_events(quick_log)] == [
            e.event_id for e in events[:9]
        ]
    finally:
        await sink.close()


async def test_a_failed_batch_goes_in_front_of_what_overflowed_meanwhile(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=5, window_s=60, open_s=30, clock=clock)
    # No stream yet: the batch in flight fails after its deadline, while the buffer overflows.
    log = await EventLog.connect(
        nats_server.url, ensure=False, ack_timeout_s=0.2, append_deadline_s=0.5
    )
    sink = make_sink(
        tmp_path, log, breaker=breaker, buffer_size=30, batch_size=20, retry_interval_s=0.01
    )
    await sink.start()
    events = [posted(-1008, i) for i in range(1, 121)]
    try:
        for event in events[:20]:
            sink.submit(event)
        await wait_until(lambda: sink.status().buffer_depth == 0, timeout=5)  # the 20 are in flight
        assert sink.status().spool_records == 0
        for event in events[20:]:
            sink.submit(event)  # 100 more into a 30-slot buffer: it overflows to the spool
        assert sink.status().spool_records > 0
        await wait_until(lambda: breaker.state == "open", timeout=20)
        await log.ensure_stream()
        clock.now += 30
        await wait_until(
            lambda: sink.status().spool_records == 0 and sink.status().buffer_depth == 0, timeout=10
        )
        assert [e.event_id for e in await read_events(log)] == [e.event_id for e in events]
    finally:
        await sink.close()
        await log.close()


async def test_a_refused_event_drained_from_the_spool_is_dead_lettered_once(
    tmp_path: Path, quick_log: EventLog
) -> None:
    sink = make_sink(tmp_path, None)
    await sink.start()
    too_big = posted(-1009, 2, text="y" * (9 * 1024 * 1024))
    try:
        await sink.submit_many([posted(-1009, 1), too_big, posted(-1009, 3)])
        assert sink.status().spool_records == 3
        sink.attach(quick_log)
        await wait_until(
            lambda: sink.status().spool_records == 0 and sink.status().buffer_depth == 0, timeout=15
        )
        await wait_until(lambda: sink.status().appended == 3, timeout=10)
        stored = await read_events(quick_log)
        assert [e.event_id for e in stored[:2]] == [
            posted(-1009, 1).event_id,
            posted(-1009, 3).event_id,
        ]
        assert isinstance(stored[2], IngestFailed)
        assert sink.status().dead_lettered == 1
        letters = DeadLetterFile(tmp_path / "dead-letter" / "spool.jsonl").read()
        assert [d.event_id for d in letters] == [too_big.event_id]
    finally:
        await sink.close()


async def test_wait_drained_is_false_while_the_log_is_down_and_true_once_it_took_everything(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog
) -> None:
    nats_server.stop()
    sink = make_sink(tmp_path, quick_log, retry_interval_s=0.05)
    await sink.start()
    events = [posted(-1004, i) for i in range(1, 61)]
    try:
        await sink.submit_many(events)  # durable: in the spool, not in the log
        assert await sink.wait_drained(stall_s=0.5) is False
        nats_server.start()
        assert await sink.wait_drained(stall_s=30) is True
        assert sink.status().spool_records == 0
        assert [e.event_id for e in await read_events(quick_log)] == [e.event_id for e in events]
    finally:
        await sink.close()
