"""Live-handler throughput: real Telethon updates → events → acked appends, against a raw-append baseline.

Prints: conversion rate (pure, no I/O), handler+append rate through a real nats-server, and the raw
``append_many`` rate of the same pre-built events (the baseline measured in the same run).
Usage: ``PYTHONPATH=. python bench/telegram_live.py [N]`` (default 20000).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telethon.tl import types

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog
from ingest.telegram.handlers import LiveHandler, events_from_update
from schemas.events import Event
from schemas.stream import StreamSpec

BATCH = 1000


def make_updates(n: int, chats: int = 50, chat_base: int = 1000) -> list[object]:
    """``n`` realistic new-message updates spread over ``chats`` supergroups."""
    base = datetime(2026, 11, 28, tzinfo=UTC)
    out: list[object] = []
    for i in range(n):
        chat = chat_base + i % chats
        msg = types.Message(
            id=i // chats + 1,
            peer_id=types.PeerChannel(chat),
            date=base + timedelta(seconds=i),
            message=f"message {i} with a link https://aalto.fi and some more words",
            from_id=types.PeerUser(i % 97),
            entities=[types.MessageEntityUrl(offset=22, length=16)],
            reply_to=types.MessageReplyHeader(reply_to_msg_id=max(1, i // chats))
            if i % 3 == 0
            else None,
            views=i % 500,
        )
        out.append(types.UpdateNewChannelMessage(message=msg, pts=i, pts_count=1))
    return out


class BatchingSink:
    """Collects submitted events; ``flush`` appends them in batches and waits for acks."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self.pending: list[Event] = []

    def submit(self, event: Event) -> None:
        self.pending.append(event)

    intake_paused = False  # never paused (a test may set it)

    async def submit_many(self, events: Sequence[Event]) -> None:
        self.pending.extend(events)
        await self.flush()

    async def flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
            await self._log.append_many(batch)


async def run(n: int) -> None:
    updates = make_updates(n)
    t0 = time.perf_counter()
    converted = [
        e
        for u in updates
        for e in events_from_update(u, account="bench", observed_at=datetime.now(UTC))
    ]
    conv_s = time.perf_counter() - t0
    print(f"conversion only:            {n / conv_s:10.0f} updates/s  ({len(converted)} events)")

    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(store_dir=Path(tmp) / "js", sync_interval="2m")
        server.start()
        try:
            log = await EventLog.connect(server.url, spec=StreamSpec(name="BENCH"))
            try:
                sink = BatchingSink(log)
                handler = LiveHandler(
                    account="bench",
                    sink=sink,
                    is_watched=lambda c: True,
                    chat_for_deleted=lambda m: None,
                )
                t0 = time.perf_counter()
                for i in range(0, n, BATCH):
                    for u in updates[i : i + BATCH]:
                        handler(u)
                    await sink.flush()
                live_s = time.perf_counter() - t0
                print(f"handler -> acked appends:   {n / live_s:10.0f} events/s")
                raw_events = make_raw(n)
                t0 = time.perf_counter()
                for i in range(0, n, BATCH):
                    await log.append_many(raw_events[i : i + BATCH])
                raw_s = time.perf_counter() - t0
                print(
                    f"baseline raw append_many:   {n / raw_s:10.0f} events/s (pre-built events, no conversion)"
                )
            finally:
                await log.close()
        finally:
            server.stop()


def make_raw(n: int) -> list[Event]:
    """Pre-built events with fresh ids (so the baseline is not deduplicated against the first run)."""
    updates = make_updates(n, chat_base=900_000)  # other chats: no dedup against the handler run
    return [
        e
        for u in updates
        for e in events_from_update(u, account="raw", observed_at=datetime.now(UTC))
    ]


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20000))
