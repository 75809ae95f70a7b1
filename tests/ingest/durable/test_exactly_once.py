"""Exactly once beyond the dedup window: restarts of the demo further apart than the stream's
duplicate window (1 s here) add each group announcement (``ChatDiscovered``) once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.service_ingest import build_service
from aaltohub.settings import Settings, load_settings
from aaltohub.stream import stream_spec
from eventlog import EventLog
from schemas.events import ChatDiscovered, IngestStarted, MessagePosted
from tests.helpers import wait_until
from tests.ingest.durable.helpers import read_events

WINDOW_S = 1.0


async def run_until_traffic_follows_start(settings: Settings, log: EventLog, starts: int) -> None:
    """Run ingest (demo) until a post follows its ``starts``-th IngestStarted, then stop it."""
    service = build_service(settings, nats_url=settings.nats_url or "", demo=True)
    task = asyncio.create_task(service.run())

    async def traffic_after_start() -> bool:
        events = await read_events(log)
        begun = [i for i, e in enumerate(events) if isinstance(e, IngestStarted)]
        return len(begun) >= starts and any(
            isinstance(e, MessagePosted) for e in events[begun[starts - 1] :]
        )

    try:
        await wait_until(traffic_after_start, timeout=30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_demo_restarts_past_the_dedup_window_announce_each_group_once(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    settings = load_settings(
        data_dir=tmp_path / "data",
        nats_url=nats_server.url,
        stream_duplicate_window_s=WINDOW_S,
        demo_groups=3,
        demo_rate_per_s=50.0,
        telegram_api_id=None,
        telegram_api_hash=None,
    )
    log = await EventLog.connect(nats_server.url, spec=stream_spec(settings))
    try:
        await run_until_traffic_follows_start(settings, log, starts=1)
        first_done = time.monotonic()
        # The precondition of this test, not a wait for a result: the window has passed.
        await wait_until(lambda: time.monotonic() > first_done + 2 * WINDOW_S, timeout=10)
        await run_until_traffic_follows_start(settings, log, starts=2)
        events = await read_events(log)
    finally:
        await log.close()
    discovered = [e.event_id for e in events if isinstance(e, ChatDiscovered)]
    assert len(discovered) == 3 and len(set(discovered)) == 3
