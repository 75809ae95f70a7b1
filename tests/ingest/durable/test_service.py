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
from eventlog import EventLog, NoCommandHandler
from ingest.demo import DemoSource
from ingest.seams import EventSink, EventSource
from ingest.service import IngestService
from schemas import ids
from schemas.commands import (
    Command,
    CommandReply,
    IngestCommand,
    ReportStatus,
    RestartCrawler,
    TriggerCrawl,
    ingest_subject,
)
from schemas.events import (
    FloodWaited,
    IngestConnected,
    IngestDisconnected,
    IngestFailed,
    IngestStarted,
    IngestStopped,
)
from schemas.status import AccountStatus, CrawlerStatus, SinkStatus
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

    def status(self) -> AccountStatus:
        return AccountStatus(account=self.name, state="reconnecting", reconnect_attempts=3)


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

    def status(self) -> AccountStatus:
        return AccountStatus(account=self.name)


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


async def ask(log: EventLog, command: IngestCommand, account: str | None = None) -> CommandReply:
    """Send a command, waiting (with a deadline) for the service to start serving."""
    replies: list[CommandReply] = []

    async def answered() -> bool:
        try:
            subject = ingest_subject(command, account)
            replies.append(await log.request(subject, command, timeout_s=2))
        except NoCommandHandler:
            return False
        return True

    await wait_until(answered, timeout=15)
    return replies[-1]


def _sink(service: IngestService) -> SinkStatus:
    sink = service.report().sink
    assert sink is not None
    return sink


@pytest.fixture
def demo() -> DemoSource:
    return DemoSource(groups=3, rate_per_s=100, seed=1, first_message_id=1)


async def test_report_status_answers_with_service_status(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog, demo: DemoSource
) -> None:
    async with running(tmp_path, nats_server.url, [demo], demo=True):
        await wait_until(lambda: demo.produced > 20, timeout=10)
        reply = await ask(quick_log, ReportStatus())
    status = reply.crawler
    assert reply.ok and isinstance(status, CrawlerStatus)
    assert status.running and status.demo and [a.account for a in status.accounts] == ["demo"]
    assert status.accounts[0].connected and status.accounts[0].messages_received > 0
    assert status.sink is not None and status.sink.breaker == "closed" and status.sink.log_connected


async def test_trigger_crawl_is_dispatched_to_the_accounts_source(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog, demo: DemoSource
) -> None:
    async with running(tmp_path, nats_server.url, [demo], demo=True):
        ok = await ask(quick_log, TriggerCrawl(chat_id=demo.chat_ids[0], mode="backfill"), "demo")
        unknown = await ask(quick_log, TriggerCrawl(chat_id=-1, mode="gapfill"), "demo")
    assert ok.ok and "needs no backfill" in ok.message
    assert not unknown.ok


async def test_commands_for_all_reach_every_source_and_status_shows_flood_waits(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog
) -> None:
    source = FloodingSource()
    async with running(tmp_path, nats_server.url, [source], demo=False):
        restart = await ask(quick_log, RestartCrawler())
        reply = await ask(quick_log, ReportStatus(), "acct1")
    assert restart.ok and source.commands == [RestartCrawler()]
    assert reply.crawler is not None
    (account,) = reply.crawler.accounts
    assert account.last_flood_wait is not None
    assert (account.last_flood_wait.seconds, account.last_flood_wait.method) == (
        42,
        "GetHistoryRequest",
    )
    assert (account.state, account.reconnect_attempts, account.connected) == (
        "reconnecting",
        3,
        False,
    )


async def test_lifecycle_events_bracket_the_run(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog, demo: DemoSource
) -> None:
    async with running(tmp_path, nats_server.url, [demo], demo=True) as service:
        await wait_until(lambda: _sink(service).appended > 50, timeout=10)
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
        await wait_until(lambda: _sink(service).spool_records != 0, timeout=15)
        assert _sink(service).log_connected is False
        nats_server.start()
        await wait_until(
            lambda: _sink(service).log_connected and _sink(service).spool_records == 0,
            timeout=30,
        )
        reply = await ask(quick_log, ReportStatus(), "demo")
        assert reply.ok and reply.crawler is not None
        assert [a.account for a in reply.crawler.accounts] == ["demo"]
    stored = [e.event_id for e in await read_events(quick_log)]
    assert len(stored) == len(set(stored))
    assert len(stored) >= demo.produced
