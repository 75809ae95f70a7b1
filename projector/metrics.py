"""Prometheus metrics of the projector (own registry; served by ``aaltohub project``).

Progress gauges are read from the runners at scrape time; the log → projection latency histogram
is fed by the runners as they apply past a log head they saw appear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from projector.runner import RunnerStatus

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class ProjectorMetrics:
    """The projector's metrics; ``latency`` is the runners' ``on_latency`` callback."""

    def __init__(self, status: Callable[[], Sequence[RunnerStatus]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._latency = Histogram(
            "aaltohub_projector_log_to_projection_seconds",
            "Time from the projector seeing a new log head to having applied it",
            ["projection"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_RunnerCollector(status))

    def latency(self, projection: str, seconds: float) -> None:
        """Record one log → projection latency."""
        self._latency.labels(projection).observe(seconds)


class _RunnerCollector(Collector):
    def __init__(self, status: Callable[[], Sequence[RunnerStatus]]) -> None:
        self._status = status

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: the service may not be running when the registry is built."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "aaltohub_projector_lag_events",
            "Log head minus the projection's checkpoint",
            labels=["projection"],
        )
        seq = GaugeMetricFamily(
            "aaltohub_projector_applied_seq", "Last applied seq", labels=["projection"]
        )
        rate = GaugeMetricFamily(
            "aaltohub_projector_events_per_second", "Recent apply rate", labels=["projection"]
        )
        retries = GaugeMetricFamily(
            "aaltohub_projector_retries",
            "Reconnects to the store or the log since start",
            labels=["projection"],
        )
        for st in self._status():
            lag.add_metric([st.name], st.lag)
            seq.add_metric([st.name], st.seq)
            rate.add_metric([st.name], st.events_per_s)
            retries.add_metric([st.name], st.retries)
        yield from (lag, seq, rate, retries)
