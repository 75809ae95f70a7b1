"""The demo source: every kind it claims reaches the log, marked demo, with deterministic ids."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

from eventlog import EventLog
from ingest.demo import KINDS, DemoSource
from schemas import ids
from schemas.events import (
    BackfillCompleted,
    ChatDiscovered,
    Event,
    IngestConnected,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    ReactionsUpdated,
)
from tests.helpers import wait_until
from tests.ingest.durable.helpers import make_sink, read_events


def classify(event: Event) -> str | None:
    """The demo label an event in the log shows, judged from its content."""
    if isinstance(event, ChatDiscovered):
        return "discovered"
    if isinstance(event, BackfillCompleted):
        return "backfilled"
    if isinstance(event, MessageEdited):
        return "edit"
    if isinstance(event, MessageDeleted):
        return "delete"
    if isinstance(event, ReactionsUpdated):
        return "reactions" if event.reactions else None
    if isinstance(event, MessagePosted):
        message = event.message
        if message.action is not None:
            return {"chat_add_user": "join", "chat_delete_user": "leave"}.get(message.action.type)
        if message.grouped_id is not None:
            return "album"
        if message.media is not None:
            return f"media:{message.media.type}"
        if message.reply_to is not None:
            return "reply"
        return "post_entities" if message.entities else "post"
    return None


async def test_demo_produces_every_kind_it_claims(tmp_path: Path, quick_log: EventLog) -> None:
    sink = make_sink(tmp_path, quick_log)
    await sink.start()
    demo = DemoSource(groups=5, rate_per_s=0, seed=3, first_message_id=1, chunk=200)
    task = asyncio.create_task(demo.run(sink))
    try:
        await wait_until(lambda: all(demo.counts[k] > 0 for k in KINDS), timeout=30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sink.close()
    events = await read_events(quick_log)
    assert {classify(e) for e in events} >= set(KINDS)
    assert all(e.source == "demo" for e in events)
    assert any(isinstance(e, IngestConnected) for e in events)
    basic = [c for c in demo.chat_ids if not ids.is_channel_id(c)]
    assert basic and all(
        e.chat_id is None or ids.is_channel_id(e.chat_id)
        for e in events
        if isinstance(e, MessageDeleted)
    )


async def test_demo_ids_are_deterministic_for_a_seed(tmp_path: Path) -> None:
    ledgers = []
    for run in ("a", "b"):
        ledger = tmp_path / run / "ledger.txt"
        sink = make_sink(tmp_path / run, None)
        await sink.start()
        demo = DemoSource(
            groups=3,
            rate_per_s=0,
            seed=7,
            first_message_id=100,
            ledger_path=ledger,
            chunk=100,
            clock=lambda: datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        )
        task = asyncio.create_task(demo.run(sink))
        await wait_until(lambda demo=demo: demo.produced >= 300, timeout=20)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sink.close()
        # Occurrence ids (lifecycle) are random by design; every fact id must repeat.
        ledgers.append(
            [line for line in ledger.read_text().splitlines() if not line.startswith("o-")][:300]
        )
    assert len(ledgers[0]) == 300
    assert ledgers[0] == ledgers[1]


def test_demo_numbers_basic_group_messages_per_account_like_telegram() -> None:
    demo = DemoSource(groups=10, seed=3, first_message_id=1)
    posted = [e for e in demo.take(4000) if isinstance(e, MessagePosted)]
    basic = [e for e in posted if e.chat_id is not None and not ids.is_channel_id(e.chat_id)]
    assert len({e.chat_id for e in basic}) == 2  # groups 4 and 9
    basic_ids = [e.message.message_id for e in basic]
    assert sorted(basic_ids) == list(range(1, len(basic_ids) + 1))  # one sequence, no reuse
    per_supergroup: dict[int, list[int]] = {}
    for e in posted:
        if e.chat_id is not None and ids.is_channel_id(e.chat_id):
            per_supergroup.setdefault(e.chat_id, []).append(e.message.message_id)
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in per_supergroup.values())
