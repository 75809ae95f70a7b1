"""The composition-root wiring: ``INGEST_SERVICE`` runs the demo without credentials and says so."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.service_ingest import INGEST_SERVICE
from aaltohub.services import ServiceContext
from aaltohub.settings import load_settings
from eventlog import EventLog
from schemas.events import IngestStarted, MessagePosted
from tests.helpers import wait_until
from tests.ingest.durable.helpers import read_events


async def test_ingest_service_spec_runs_the_demo_without_credentials(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        data_dir=tmp_path / "data",
        nats_url=nats_server.url,
        demo_rate_per_s=200.0,
        telegram_api_id=None,
        telegram_api_hash=None,
    )
    context = ServiceContext(
        settings=settings,
        nats_url=nats_server.url,
        database_url="unused",
        duckdb_path=tmp_path / "a.duckdb",
    )
    assert INGEST_SERVICE.stop_order == 1
    caplog.set_level(logging.INFO)
    task: asyncio.Future[None] = asyncio.ensure_future(INGEST_SERVICE.run(context))
    try:

        async def flowing() -> bool:
            return (await quick_log.info()).messages >= 50

        await wait_until(flowing, timeout=20)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    events = await read_events(quick_log)
    assert isinstance(events[0], IngestStarted) and events[0].demo
    assert any(isinstance(e, MessagePosted) and e.source == "demo" for e in events)
    assert "running the DEMO source" in caplog.text
    assert (tmp_path / "data" / "spool").is_dir()
