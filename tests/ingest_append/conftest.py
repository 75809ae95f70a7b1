"""Helpers for the append-path tests: a sink on a private spool, reading back the log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog, Record
from ingest.append_deadletter import DeadLetterFile
from ingest.appender import DurableSink
from ingest.breaker import CircuitBreaker
from ingest.spool import Spool
from schemas.codec import Codec
from schemas.events import Event


def make_sink(data_dir: Path, log: EventLog | None, **kwargs: object) -> DurableSink:
    """A sink with the spool and dead-letter file under ``data_dir``."""
    return DurableSink(
        spool=Spool(data_dir / "spool", codec=Codec(), fsync_every=16),
        dead_letters=DeadLetterFile(data_dir / "dead-letter" / "ingest.jsonl"),
        log=log,
        **kwargs,  # type: ignore[arg-type]
    )


async def read_events(log: EventLog) -> list[Event]:
    """Every event in the log, in stream order."""
    out: list[Event] = []
    async for batch in log.read(1):
        for record in batch:
            assert isinstance(record, Record), record
            out.append(record.event)
    return out


@pytest.fixture
async def quick_log(nats_server: NatsServer) -> AsyncIterator[EventLog]:
    """An ``EventLog`` that gives up on an append within ~2 s (so the sink spools promptly)."""
    log = await EventLog.connect(nats_server.url, ack_timeout_s=0.5, append_deadline_s=1.5)
    try:
        yield log
    finally:
        await log.close()


__all__ = ["CircuitBreaker", "make_sink", "read_events"]
