"""Atomic batch appends against a real nats-server: all guarantees of one-by-one publishing kept."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js.api import StreamConfig

from aaltohub.embedded.nats_server import NatsServer
from eventlog import AppendRejected, EventLog
from eventlog.append import Appender
from eventlog.batch import BatchSlots
from eventlog.connection import connect
from eventlog.stream import server_takes_atomic, stream_config
from schemas.codec import Codec
from schemas.stream import StreamSpec
from tests.helpers import posted


async def _batch_id_of(url: str, stream: str, seq: int) -> str | None:
    """The Nats-Batch-Id header the server stored with ``seq`` (None: published one by one)."""
    nc = await nats.connect(url)
    try:
        msg = await nc.jetstream().get_msg(stream, seq)
        return (msg.headers or {}).get("Nats-Batch-Id")
    finally:
        await nc.close()


async def test_events_go_out_in_atomic_batches_with_consecutive_seqs(
    nats_server: NatsServer, event_log: EventLog
) -> None:
    events = [posted(-1001, i) for i in range(1, 2501)]
    results = await event_log.append_many(events)
    assert [r.seq for r in results] == list(range(1, 2501))
    assert not any(r.duplicate for r in results)
    assert event_log.atomic_appends is True
    first = await _batch_id_of(nats_server.url, event_log.stream_name, 1)
    last = await _batch_id_of(nats_server.url, event_log.stream_name, 2500)
    assert first is not None and last is not None and first != last  # 1,000 per batch at most
    assert (await event_log.info()).messages == 2500


async def test_batch_holding_stored_ids_falls_back_and_stores_the_rest_once(
    event_log: EventLog,
) -> None:
    events = [posted(-1001, i) for i in range(1, 1201)]
    earlier = await event_log.append_many(events[100:110])
    results = await event_log.append_many(events)
    assert [r.duplicate for r in results[100:110]] == [True] * 10
    assert [r.seq for r in results[100:110]] == [r.seq for r in earlier]
    assert sum(r.duplicate for r in results) == 10
    assert len({r.seq for r in results}) == 1200
    assert (await event_log.info()).messages == 1200


async def test_same_event_twice_in_one_call_is_stored_once(event_log: EventLog) -> None:
    one, two = posted(-1001, 1), posted(-1001, 2)
    results = await event_log.append_many([one, one, two])
    assert results[1].duplicate and results[1].seq == results[0].seq
    assert not results[2].duplicate
    assert (await event_log.info()).messages == 2


async def test_event_over_the_payload_limit_is_rejected_and_the_rest_of_its_batch_stored(
    event_log: EventLog,
) -> None:
    too_big = posted(-1001, 2, text="x" * (9 * 1024 * 1024))  # the server's max_payload is 8 MB
    with pytest.raises(AppendRejected) as rejected:
        await event_log.append_many([posted(-1001, 1), too_big, posted(-1001, 3)])
    assert rejected.value.event_id == too_big.event_id
    assert (await event_log.info()).messages == 2


@pytest.mark.parametrize("stream_spec", [StreamSpec(allow_atomic=False)], indirect=True)
async def test_stream_without_atomic_publish_gets_one_publish_per_event(
    nats_server: NatsServer, event_log: EventLog
) -> None:
    results = await event_log.append_many([posted(-1001, i) for i in range(1, 301)])
    assert [r.seq for r in results] == list(range(1, 301))
    assert event_log.atomic_appends is False
    assert await _batch_id_of(nats_server.url, event_log.stream_name, 300) is None


async def test_atomic_publish_turned_off_under_a_running_appender_loses_nothing(
    nats_server: NatsServer, event_log: EventLog, stream_spec: StreamSpec
) -> None:
    await event_log.append_many([posted(-1001, i) for i in range(1, 11)])
    assert event_log.atomic_appends is True
    nc = await nats.connect(nats_server.url)
    try:
        config = stream_config(stream_spec)
        config.allow_atomic = False
        await nc.jetstream().update_stream(config)
    finally:
        await nc.close()
    results = await event_log.append_many([posted(-1001, i) for i in range(1, 2001)])
    assert [r.duplicate for r in results[:10]] == [True] * 10
    assert [r.seq for r in results[10:]] == list(range(11, 2001))
    assert event_log.atomic_appends is False


def test_servers_before_2_12_get_no_allow_atomic_in_the_stream_config() -> None:
    assert not server_takes_atomic((2, 11)) and server_takes_atomic((2, 12))
    assert stream_config(StreamSpec(), atomic_supported=False).allow_atomic is None
    assert stream_config(StreamSpec(), atomic_supported=True).allow_atomic is True
    assert stream_config(StreamSpec(allow_atomic=False)).allow_atomic is None
    assert isinstance(stream_config(StreamSpec()), StreamConfig)


async def test_batch_slots_are_shared_by_every_call_and_come_back_on_release() -> None:
    slots = BatchSlots(2)
    assert await slots.take(timeout_s=1) and await slots.take(timeout_s=1)
    assert await slots.take(timeout_s=0.05) is False  # the stream's cap is reached
    waiter = asyncio.create_task(slots.take(timeout_s=10))
    await asyncio.sleep(0)
    slots.give_back()
    assert await waiter is True
    assert slots.free == 0


async def test_concurrent_calls_within_the_streams_cap_store_every_event_once(
    nats_server: NatsServer, event_log: EventLog
) -> None:
    client = await connect(nats_server.url, name="slots", connect_timeout_s=10)
    try:
        appender = Appender(
            client,
            stream=event_log.stream_name,
            codec=Codec(),
            batch_size=10,
            batches_in_flight=2,
        )
        calls = [[posted(-1001 - c, i) for i in range(1, 101)] for c in range(4)]
        results = await asyncio.gather(*(appender.append_many(events) for events in calls))
        assert appender.atomic is True
    finally:
        await client.close()
    assert sorted(r.seq for call in results for r in call) == list(range(1, 401))
    assert (await event_log.info()).messages == 400
