"""The real services the admin endpoints talk to: ingest with a Telegram account worker on the
fake network, and the projector. Commands from the API reach them over the real NATS server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telethon.tl import types

from eventlog import EventLog
from ingest.seams import EventSource
from ingest.service import IngestService
from ingest.telegram.assignment import ChatAssignment
from ingest.telegram.gateway import PeerRef
from ingest.telegram.worker import TelegramAccountWorker, WorkerConfig
from projector.deadletter import DeadLetterStore
from projector.postgres.projection import PostgresProjection
from projector.service import ProjectorService
from tests.helpers import wait_until
from tests.ingest.durable.helpers import make_sink
from tests.ingest.telegram.fakes import FakeGateway, TestSleeper

# Loops that should stay idle during a test get intervals the ``TestSleeper`` never returns from.
IDLE_WORKER = WorkerConfig(
    discovery_interval_s=10_000,
    gapfill_interval_s=100_000,
    backfill_pause_s=0.0,
    connection_check_s=10_000,
)


def channel_message(chat_id: int, message_id: int, *, minutes_ago: float = 1.0) -> types.Message:
    """A real Telethon message in the channel/supergroup ``chat_id`` (marked id)."""
    return types.Message(
        id=message_id,
        peer_id=types.PeerChannel(-chat_id - 1_000_000_000_000),
        date=datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes_ago),
        message=f"message {message_id}",
        from_id=types.PeerUser(5),
    )


def supergroup(chat_id: int, title: str = "Group") -> PeerRef:
    """A dialog of the fake network."""
    return PeerRef(
        peer_id=chat_id, kind="channel", access_hash=1, title=title, chat_kind="supergroup"
    )


@dataclass(frozen=True)
class Crawler:
    """A running ingest service with one account worker on the fake network."""

    service: IngestService
    worker: TelegramAccountWorker
    gateway: FakeGateway


@contextlib.asynccontextmanager
async def running_ingest(
    tmp_path: Path, nats_url: str, sources: Sequence[EventSource]
) -> AsyncIterator[IngestService]:
    """The ingest service over ``sources``, serving commands; stopped on exit."""

    async def connect() -> EventLog:
        return await EventLog.connect(nats_url, ack_timeout_s=1.0, append_deadline_s=5.0)

    service = IngestService(
        sources=lambda: sources,
        sink=make_sink(tmp_path / "ingest", None),
        connect_log=connect,
        demo=False,
    )
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.serving.wait(), timeout=15)
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running_crawler(
    tmp_path: Path, log: EventLog, nats_url: str, gateway: FakeGateway, *, account: str = "main"
) -> AsyncIterator[Crawler]:
    """Ingest with a ``TelegramAccountWorker`` for ``account`` on ``gateway``, ready to crawl."""
    worker = TelegramAccountWorker(
        account=account,
        gateway=gateway,
        log_reader=log,
        config=IDLE_WORKER,
        assignment=ChatAssignment(),
        sleep=TestSleeper(),
    )
    async with running_ingest(tmp_path, nats_url, [worker]) as service:
        await wait_until(worker.ready.is_set, timeout=15)
        yield Crawler(service=service, worker=worker, gateway=gateway)


@contextlib.asynccontextmanager
async def running_projector(log: EventLog, database_url: str) -> AsyncIterator[ProjectorService]:
    """The projector with the Postgres projection only (the others disabled), serving commands."""
    service = ProjectorService(
        log=log,
        projections=[PostgresProjection(database_url=database_url, codec=log.codec)],
        dead_letters=DeadLetterStore(database_url=database_url),
    )
    task = asyncio.create_task(service.run())
    try:
        await wait_until(lambda: service.serving.is_set(), timeout=15)
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
