"""The ingest service: lifecycle events, commands over NATS, status, crashed sources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog
from eventlog.commands import NoCommandHandler, send_command
from ingest.demo import DemoSource
from ingest.seams import EventSink, EventSource
from ingest.service import IngestService
from schemas import ids
from schemas.commands import Command, CommandReply, ReportStatus, RestartCrawler, TriggerCrawl
from schemas.events import (
    FloodWaited,
    IngestConnected,
    IngestDisconnected,
    IngestFailed,
    IngestStarted,
    IngestStopped,
)
from schemas.subjects import command_subject
from tests.helpers import wait_until
from tests.ingest.durable.helpers import make_sink, read_events


class FloodingSource:
    """A source that reports a connection, a flood wait and a disconnection, then idles."""

    name = "acct1"

    def __init__(self) -> None:
        self.commands: list[Command] = []

    async def run(self, sink: EventSink) -> None:
        now = datetime.now(UTC)
        common: dict[str, Any] = {"account": self.name, "observed_at": now, "source": "live"}
        sink.submit(IngestConnected(event_id=ids.occurrence_id("connected"), **common))
        sink.submit(
            FloodWaited(
                event_id=ids.occurrence_id("flood"),
                seconds=42,
                method="GetHistoryRequest",
                resume_at=now,
                **common,
            )
        )
        sink.submit(
            IngestDisconnected(
                event_id=ids.occurrence_id("disconnected"), reason="network", **common
            )
        )
        await asyncio.Event().wait()

    async def handle(self, command: Command) -> CommandReply:
        self.commands.append(command)
        return CommandReply(ok=True, message=f"{self.name} got {type(command).__name__}")


class CrashingSource:
    """A source whose first run crashes."""

    name = "crashy"

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, sink: EventSink) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("telegram went away")
        await asyncio.Event().wait()

    async def handle(self, command: Command) -> CommandReply:
        return CommandReply(ok=True)


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, url: str, sources: Sequence[EventSource], *, demo: bool
) -> AsyncIterator[IngestService]:
    async def connect() -> EventLog:
        return await EventLog.connect(url, ack_timeout_s=0.5, append_deadline_s=1.5)

    service = IngestService(
        sources=lambda: sources, sink=make_sink(tmp_path, None), connect_log=connect, demo=demo
    )
    task = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def ask(log: EventLog, subject: str, command: Command) -> CommandReply:
    """Send a command, waiting (with a deadline) for the service to start serving."""
    replies: list[CommandReply] = []

    async def answered() -> bool:
        try:
            replies.append(await send_command(log.nats_client, subject, command, timeout_s=2))
        except NoCommandHandler:
            return False
        return True

    await wait_until(answered, timeout=15)
    return replies[-1]


@pytest.fixture
def demo() -> DemoSource:
    return DemoSource(groups=3, rate_per_s=100, seed=1, first_message_id=1)


async def test_report_status_answers_with_service_status(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog, demo: DemoSource
) -> None:
    async with running(tmp_path, nats_server.url, [demo], demo=True):
        await wait_until(lambda: demo.produced > 20, timeout=10)
        reply = await ask(quick_log, command_subject(None, "status"), ReportStatus())
    assert reply.ok
    data = reply.data
    assert data["running"] is True and data["demo"] is True and data["accounts"] == "demo"
    assert isinstance(data["messages_received"], int) and data["messages_received"] > 0
    assert data["breaker"] == "closed" and data["log_connected"] is True
    assert {"buffer_depth", "spool_records", "spool_bytes", "uptime_s", "last_flood_wait_s"} <= set(
        data
    )


async def test_trigger_crawl_is_dispatched_to_the_accounts_source(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog, demo: DemoSource
) -> None:
    async with running(tmp_path, nats_server.url, [demo], demo=True):
        ok = await ask(
            quick_log,
            command_subject("demo", "crawl"),
            TriggerCrawl(chat_id=demo.chat_ids[0], mode="backfill"),
        )
        unknown = await ask(
            quick_log, command_subject("demo", "crawl"), TriggerCrawl(chat_id=-1, mode="gapfill")
        )
    assert ok.ok and "needs no backfill" in ok.message
    assert not unknown.ok


async def test_commands_for_all_reach_every_source_and_status_shows_flood_waits(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog
) -> None:
    source = FloodingSource()
    async with running(tmp_path, nats_server.url, [source], demo=False):
        restart = await ask(quick_log, command_subject(None, "restart"), RestartCrawler())
        status = await ask(quick_log, command_subject("acct1", "status"), ReportStatus())
    assert restart.ok and source.commands == [RestartCrawler()]
    assert status.data["last_flood_wait_s"] == 42
    assert status.data["last_flood_wait_method"] == "GetHistoryRequest"
    assert status.data["connected"] is False


async def test_lifecycle_events_bracket_the_run(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog, demo: DemoSource
) -> None:
    async with running(tmp_path, nats_server.url, [demo], demo=True) as service:
        await wait_until(lambda: service.status()["appended"] > 50, timeout=10)  # type: ignore[operator]
    events = await read_events(quick_log)
    assert isinstance(events[0], IngestStarted) and events[0].demo
    assert isinstance(events[-1], IngestStopped)
    assert len({e.event_id for e in events}) == len(events)


async def test_crashed_source_is_recorded_and_restarted(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog
) -> None:
    source = CrashingSource()
    async with running(tmp_path, nats_server.url, [source], demo=False):
        await wait_until(lambda: source.runs == 2, timeout=10)
    failures = [e for e in await read_events(quick_log) if isinstance(e, IngestFailed)]
    assert [f.account for f in failures] == ["crashy"]
    assert "RuntimeError" in failures[0].error


async def test_service_started_while_the_log_is_down_spools_then_catches_up(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog, demo: DemoSource
) -> None:
    nats_server.stop()
    async with running(tmp_path, nats_server.url, [demo], demo=True) as service:
        await wait_until(lambda: service.status()["spool_records"] != 0, timeout=15)
        assert service.status()["log_connected"] is False
        nats_server.start()
        await wait_until(
            lambda: (
                service.status()["log_connected"] is True and service.status()["spool_records"] == 0
            ),
            timeout=30,
        )
        reply = await ask(quick_log, command_subject("demo", "status"), ReportStatus())
        assert reply.ok and reply.data["accounts"] == "demo"
    stored = [e.event_id for e in await read_events(quick_log)]
    assert len(stored) == len(set(stored))
    assert len(stored) >= demo.produced
