"""Prometheus metrics of the ingest service (own registry; served by ``aaltohub ingest``).

Counters and histograms are fed by the events passing through the service's sink (what was
received, by source; reconnects; flood waits; what gap-fill and catch-up found missing) and by
the append path's acknowledgements (Telegram → log latency). Gauges are read from the service's
typed status at scrape time, so they can never drift from ``/admin/status``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.events import (
    CatchUpCompleted,
    Event,
    FloodWaited,
    GapFillCompleted,
    IngestReconnecting,
    MessageEdited,
    MessagePosted,
)
from schemas.status import CrawlerStatus

# Telegram → log latency spans live traffic (sub-second) to catch-up after downtime (hours).
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)


class IngestMetrics:
    """The ingest service's metrics: ``observe`` every submitted event, ``acked`` every appended
    batch, and register the status collector with ``track``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages = Counter(
            "aaltohub_ingest_messages",
            "Messages received (posts and edits), by source",
            ["account", "source"],
            registry=r,
        )
        self.latency = Histogram(
            "aaltohub_ingest_telegram_to_log_seconds",
            "Message date (edit date for edits) to the log's append acknowledgement",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.reconnects = Counter(
            "aaltohub_ingest_reconnect_attempts",
            "Reconnect attempts of the account supervisor",
            ["account"],
            registry=r,
        )
        self.flood_waits = Counter(
            "aaltohub_ingest_flood_waits", "Flood waits Telegram asked for", ["account"], registry=r
        )
        self.flood_wait_seconds = Counter(
            "aaltohub_ingest_flood_wait_seconds",
            "Seconds of flood wait Telegram asked for",
            ["account"],
            registry=r,
        )
        self.found_missing = Counter(
            "aaltohub_ingest_found_missing_messages",
            "Messages that live updates missed and a gap-fill or catch-up found (the loss rate)",
            ["account", "by"],
            registry=r,
        )

    def observe(self, event: Event) -> None:
        """Count one event submitted by a source."""
        if isinstance(event, MessagePosted | MessageEdited):
            self.messages.labels(event.account, event.source).inc()
        elif isinstance(event, IngestReconnecting):
            self.reconnects.labels(event.account).inc()
        elif isinstance(event, FloodWaited):
            self.flood_waits.labels(event.account).inc()
            self.flood_wait_seconds.labels(event.account).inc(event.seconds)
        elif isinstance(event, GapFillCompleted):
            self.found_missing.labels(event.account, "gapfill").inc(event.new)
        elif isinstance(event, CatchUpCompleted):
            self.found_missing.labels(event.account, "catchup").inc(event.new)

    def acked(self, events: Sequence[Event]) -> None:
        """Record the Telegram → log latency of appended messages."""
        now = datetime.now(UTC)
        for event in events:
            if isinstance(event, MessagePosted | MessageEdited) and event.source != "import":
                sent = event.message.edit_date or event.message.date
                self.latency.labels(event.source).observe(max(0.0, (now - sent).total_seconds()))

    def track(self, status: Callable[[], CrawlerStatus]) -> None:
        """Expose the service's status as gauges, read at each scrape."""
        self.registry.register(_StatusCollector(status))


class _StatusCollector(Collector):
    def __init__(self, status: Callable[[], CrawlerStatus]) -> None:
        self._status = status

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: the service may not be running when the registry is built."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        st = self._status()
        now = time.time()
        yield _gauge("aaltohub_ingest_running", "1 while ingest runs", float(st.running))
        yield _gauge("aaltohub_ingest_uptime_seconds", "Seconds since ingest started", st.uptime_s)
        connected = GaugeMetricFamily(
            "aaltohub_ingest_connected", "1 while the account is connected", labels=["account"]
        )
        since = GaugeMetricFamily(
            "aaltohub_ingest_connected_seconds",
            "Seconds the account has been connected (0 while down)",
            labels=["account"],
        )
        watched = GaugeMetricFamily(
            "aaltohub_ingest_groups_watched", "Groups the account watches", labels=["account"]
        )
        for a in st.accounts:
            connected.add_metric([a.account], float(a.connected))
            up_s = now - a.connected_since.timestamp() if a.connected_since and a.connected else 0
            since.add_metric([a.account], up_s)
            watched.add_metric([a.account], float(a.groups_watched))
        yield from (connected, since, watched)
        if st.sink is not None:
            s = st.sink
            yield _gauge("aaltohub_ingest_buffer_depth", "Events in the buffer", s.buffer_depth)
            yield _gauge("aaltohub_ingest_buffer_capacity", "Buffer size", s.buffer_capacity)
            yield _gauge("aaltohub_ingest_spool_bytes", "Bytes in the spool", s.spool_bytes)
            yield _gauge("aaltohub_ingest_spool_records", "Events in the spool", s.spool_records)
            yield _gauge(
                "aaltohub_ingest_dead_letters", "Events the log refused for good", s.dead_lettered
            )
            yield _gauge(
                "aaltohub_ingest_duplicates",
                "Appends the log already held (dedup hits)",
                s.duplicates,
            )
            yield _gauge("aaltohub_ingest_appended", "Events appended since start", s.appended)
            yield _gauge(
                "aaltohub_ingest_log_connected", "1 while the log takes appends", s.log_connected
            )
            yield _gauge(
                "aaltohub_ingest_breaker_open",
                "1 while appends go to the spool without trying the log",
                s.breaker == "open",
            )
            yield _gauge(
                "aaltohub_ingest_intake_paused",
                "1 while intake is paused: the spool cannot be written (disk full) and the log"
                " takes nothing",
                s.intake_paused,
            )
            yield _gauge(
                "aaltohub_ingest_spool_write_failures",
                "Spool writes that failed since start (ENOSPC and other I/O errors)",
                s.spool_write_failures,
            )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))
