"""Append, dedup, replay and follow against a real nats-server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from eventlog import EventLog, Record
from tests.helpers import posted, wait_until


async def test_append_then_read_back_equal(event_log: EventLog) -> None:
    events = [posted(-1001234567890, i, text=f"m{i}") for i in range(1, 501)]
    results = await event_log.append_many(events)
    assert [r.seq for r in results] == list(range(1, 501))
    got: list[Record] = []
    async for batch in event_log.read(1, batch_size=128):
        got.extend(r for r in batch if isinstance(r, Record))
    assert [r.event for r in got] == events
    assert [r.seq for r in got] == list(range(1, 501))


async def test_same_event_id_is_stored_once(event_log: EventLog) -> None:
    event = posted(-1001234567890, 7)
    first = await event_log.append(event)
    second = await event_log.append(event)
    assert second.duplicate and second.seq == first.seq
    assert (await event_log.info()).messages == 1


async def test_replay_from_seq_n(event_log: EventLog) -> None:
    await event_log.append_many([posted(-1001, i) for i in range(1, 101)])
    seqs = [r.seq async for batch in event_log.read(40) for r in batch]
    assert seqs == list(range(40, 101))


async def test_follow_receives_new_appends(event_log: EventLog) -> None:
    await event_log.append_many([posted(-1001, i) for i in range(1, 4)])
    seen: list[int] = []

    async def consume() -> None:
        async for batch in event_log.follow(2):
            seen.extend(r.seq for r in batch)

    task = asyncio.create_task(consume())
    try:
        await wait_until(lambda: seen == [2, 3])
        await event_log.append_many([posted(-1001, i) for i in range(4, 7)])
        await wait_until(lambda: seen == [2, 3, 4, 5, 6])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_first_seq_at_finds_the_first_record_appended_since(event_log: EventLog) -> None:
    assert await event_log.first_seq_at(datetime.now(UTC)) == 1  # empty stream: the next seq
    before = await event_log.append_many([posted(-1001, i) for i in range(1, 38)])
    between = datetime.now(UTC)
    after = await event_log.append_many([posted(-1002, i) for i in range(1, 25)])
    assert await event_log.first_seq_at(between) == after[0].seq
    assert await event_log.first_seq_at(between - timedelta(days=1)) == before[0].seq
    assert await event_log.first_seq_at(datetime.now(UTC) + timedelta(hours=1)) == after[-1].seq + 1
