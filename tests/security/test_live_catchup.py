"""Live clients resuming from old seqs share one reader of the log (issue 15, item 6).

Replayed: 200 WebSocket clients resume from seq 0 at once, older than the API's in-memory history.
Each used to create its own JetStream consumer (+500 MiB, failures); now the log shows at most the
hub's follower and the one catch-up reader, and every client still gets every event once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from eventlog import EventLog
from tests.api.conftest import ADMIN_TOKEN
from tests.helpers import posted
from tests.security.conftest import StartApi

pytestmark = pytest.mark.timeout(180)

CLIENTS = 200
EVENTS = 1000
CHAT = -1001
OTHER = -1002


def ws_url(base: str, **params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return base.replace("http://", "ws://") + f"/live/ws?{query}"


async def seqs_received(ws: ClientConnection, n: int) -> list[int]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(120):
        while len(out) < n:
            out += json.loads(await ws.recv())
    return [e["seq"] for e in out]


async def test_many_resumes_from_seq_zero_share_one_reader(
    start_bounded_api: StartApi, event_log: EventLog
) -> None:
    for start in range(1, EVENTS + 1, 250):
        await event_log.append_many([posted(CHAT, i) for i in range(start, start + 250)])
    api = await start_bounded_api({"live_history_events": 10})
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    most_consumers = 0
    done = asyncio.Event()

    async def watch_consumers() -> None:
        nonlocal most_consumers
        while not done.is_set():
            most_consumers = max(most_consumers, (await event_log.info()).consumers)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=0.02)  # sampling interval

    watcher = asyncio.create_task(watch_consumers())
    clients: list[ClientConnection] = []
    try:
        clients += await asyncio.gather(
            *(
                connect(ws_url(api.url, after_seq=0), additional_headers=headers)
                for _ in range(CLIENTS)
            )
        )
        received = await asyncio.gather(*(seqs_received(ws, EVENTS) for ws in clients))
    finally:
        done.set()
        await watcher
        for ws in clients:
            await ws.close()
    assert all(seqs == list(range(1, EVENTS + 1)) for seqs in received)
    assert most_consumers <= 2, f"{most_consumers} consumers for {CLIENTS} resuming clients"


async def test_a_resume_behind_the_shared_reader_misses_nothing(
    start_bounded_api: StartApi, event_log: EventLog
) -> None:
    await event_log.append_many([posted(CHAT if i % 2 else OTHER, i) for i in range(1, 401)])
    api = await start_bounded_api({"live_history_events": 10})
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with (
        connect(ws_url(api.url, after_seq=300), additional_headers=headers) as ahead,
        connect(ws_url(api.url, after_seq=0, chat_id=CHAT), additional_headers=headers) as behind,
    ):
        got_ahead, got_behind = await asyncio.gather(
            seqs_received(ahead, 100), seqs_received(behind, 200)
        )
    assert got_ahead == list(range(301, 401))
    assert got_behind == list(range(1, 401, 2))
