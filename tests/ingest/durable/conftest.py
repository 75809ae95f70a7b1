"""Fixtures for the append-path tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog


@pytest.fixture
async def quick_log(nats_server: NatsServer) -> AsyncIterator[EventLog]:
    """An ``EventLog`` that gives up on an append within ~2 s (so the sink spools promptly)."""
    log = await EventLog.connect(nats_server.url, ack_timeout_s=0.5, append_deadline_s=1.5)
    try:
        yield log
    finally:
        await log.close()
