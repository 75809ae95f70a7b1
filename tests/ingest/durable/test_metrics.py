"""Ingest's /metrics: real values from demo traffic through the real service and log."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.metrics_http import serving_metrics
from eventlog import EventLog
from ingest.demo import DemoSource
from ingest.metrics import IngestMetrics
from ingest.service import IngestService
from tests.helpers import wait_until
from tests.ingest.durable.helpers import make_sink


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _appended(service: IngestService) -> int:
    sink = service.report().sink
    return 0 if sink is None else sink.appended


def _samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


async def test_metrics_endpoint_shows_real_values_from_the_demo(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    metrics = IngestMetrics()
    demo = DemoSource(groups=3, rate_per_s=200, seed=1, first_message_id=1)

    async def connect() -> EventLog:
        return await EventLog.connect(nats_server.url, ack_timeout_s=1.0, append_deadline_s=5.0)

    service = IngestService(
        sources=lambda: [demo],
        sink=make_sink(tmp_path, None, on_ack=metrics.acked),
        connect_log=connect,
        demo=True,
        metrics=metrics,
    )
    port = _free_port()
    task = asyncio.create_task(service.run())
    try:
        await wait_until(lambda: _appended(service) > 50)
        with serving_metrics(metrics.registry, service="ingest", host="127.0.0.1", port=port):
            async with httpx.AsyncClient() as client:
                text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    values = _samples(text)
    assert values["aaltohub_ingest_messages_total{account=demo,source=demo}"] > 0
    assert values["aaltohub_ingest_telegram_to_log_seconds_count{source=demo}"] > 0
    assert values["aaltohub_ingest_connected{account=demo}"] == 1
    assert values["aaltohub_ingest_buffer_capacity{}"] > 0
    assert values["aaltohub_ingest_groups_watched{account=demo}"] == 3
    assert values["aaltohub_ingest_uptime_seconds{}"] > 0
