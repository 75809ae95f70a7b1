"""The projector's /metrics: progress of each running projection, read at scrape time."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from eventlog import EventLog
from projector.postgres.projection import PostgresProjection
from projector.service import ProjectorService
from tests.helpers import posted


async def test_metrics_show_each_running_projections_progress(
    event_log: EventLog, migrated_url: str
) -> None:
    await event_log.append_many([posted(-1001, i) for i in range(1, 8)])
    service = ProjectorService(
        log=event_log,
        projections=[PostgresProjection(database_url=migrated_url, codec=event_log.codec)],
        dead_letters=None,
    )
    task = asyncio.create_task(service.run())
    try:
        await service.runners["postgres"].wait_for_seq(7, timeout_s=20)
        text = generate_latest(service.metrics.registry).decode()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    values = {
        (s.name, s.labels.get("projection")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("aaltohub_projector_applied_seq", "postgres")] == 7
    assert ("aaltohub_projector_lag_events", "postgres") in values
    assert ("aaltohub_projector_lag_events", "duckdb") not in values  # not running here
