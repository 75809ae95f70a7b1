"""The real ingest service serving console logins over the fake Telegram login network."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from eventlog import EventLog
from ingest.service import IngestService
from ingest.telegram.login_desk import LoginDesk
from ingest.telegram.sessions import SessionStore
from tests.helpers import wait_until
from tests.ingest.durable.helpers import make_sink
from tests.ingest.telegram.fakes import FakeLoginNetwork


@contextlib.asynccontextmanager
async def ingest_serving_logins(
    *, nats_url: str, network: FakeLoginNetwork, store: SessionStore, tmp_path: Path
) -> AsyncIterator[IngestService]:
    """An ingest service with no sources whose login desk answers on ``nats_url`` until exit."""

    async def connect() -> EventLog:
        return await EventLog.connect(nats_url, name="login-ingest", ensure=False)

    service = IngestService(
        sources=list,
        sink=make_sink(tmp_path, None),
        connect_log=connect,
        demo=False,
        logins=LoginDesk(client_factory=network.client, store=store),
    )
    task = asyncio.create_task(service.run())
    try:
        await wait_until(service.serving.is_set, timeout=10)
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
