"""Fault test: append-many while the nats-server is killed and restarted (same port and store)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog, Record
from schemas.stream import StreamSpec
from tests.helpers import posted, wait_until

N_EVENTS = 50_000


@pytest.mark.parametrize(
    "stream_spec",
    [StreamSpec(), StreamSpec(allow_atomic=False)],
    ids=["atomic-batches", "one-by-one"],
    indirect=True,
)
async def test_append_many_across_a_server_kill_stores_every_event_once(
    nats_server: NatsServer, event_log: EventLog
) -> None:
    events = [posted(-1000000000100 - i % 7, i, text=f"event {i}") for i in range(1, N_EVENTS + 1)]
    followed: list[Record] = []

    async def follow() -> None:
        async for batch in event_log.follow(1):
            followed.extend(r for r in batch if isinstance(r, Record))

    follower = asyncio.create_task(follow())
    appending = asyncio.create_task(event_log.append_many(events))
    try:
        await wait_until(lambda: len(followed) >= 1000, timeout=30)
        assert not appending.done(), "append finished before the kill; the test would prove nothing"
        nats_server.kill()
        nats_server.start()
        results = await asyncio.wait_for(appending, timeout=90)
        assert len(results) == N_EVENTS
        info = await event_log.info()
        stored: Counter[str] = Counter()
        async for batch in event_log.read(1):
            stored.update(r.event.event_id for r in batch if isinstance(r, Record))
        assert stored == Counter(e.event_id for e in events)
        assert info.messages == N_EVENTS
        await wait_until(lambda: len(followed) >= info.last_seq, timeout=60)
        assert [r.seq for r in followed] == list(range(1, info.last_seq + 1))
    finally:
        for task in (follower, appending):
            task.cancel()
        await asyncio.gather(follower, appending, return_exceptions=True)
