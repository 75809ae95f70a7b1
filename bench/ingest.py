"""Ingest benchmark: demo source → DurableSink → acked appends, against its own nats-server.

Prints (1) the raw baseline: ``EventLog.append_many`` of pre-built events in batches of 1000;
(2) throughput: the demo source unthrottled through the sink until every event is acked;
(3) latency handler→ack (p50/p99/max) at a steady rate (default 1,000 events/s) with 200 groups;
(4) peak RSS of this process. Targets: ≥5,000 events/s, p99 < 50 ms at 1,000/s, RSS < 200 MB.

    python bench/ingest.py            # full size
    python bench/ingest.py --small    # a quick check that it works
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog
from ingest.demo import DemoSource
from ingest.durable.sink import DurableSink, build_sink
from schemas.events import Event


class TimingSink:
    """Records when each event was handed to the sink (the 'handler' end of the latency)."""

    def __init__(self) -> None:
        self.submitted: dict[str, float] = {}
        self.latencies_ms: list[float] = []
        self.acked = 0
        self.inner: DurableSink | None = None

    def submit(self, event: Event) -> None:
        self.submitted[event.event_id] = time.perf_counter()
        assert self.inner is not None
        self.inner.submit(event)

    intake_paused = False  # never paused (a test may set it)

    async def submit_many(self, events: Sequence[Event]) -> None:
        now = time.perf_counter()
        for event in events:
            self.submitted[event.event_id] = now
        assert self.inner is not None
        await self.inner.submit_many(events)

    def on_ack(self, events: Sequence[Event]) -> None:
        now = time.perf_counter()
        self.acked += len(events)
        for event in events:
            started = self.submitted.pop(event.event_id, None)
            if started is not None:
                self.latencies_ms.append((now - started) * 1000)


async def baseline(log: EventLog, count: int) -> float:
    events = DemoSource(groups=200, rate_per_s=0, seed=11, first_message_id=10_000_000).take(count)
    started = time.perf_counter()
    for i in range(0, len(events), 1000):
        await log.append_many(events[i : i + 1000])
    return count / (time.perf_counter() - started)


async def through_sink(
    log: EventLog,
    data_dir: Path,
    *,
    groups: int,
    rate: float,
    seconds: float | None,
    count: int | None,
    first_id: int,
) -> tuple[float, TimingSink, int, int]:
    timing = TimingSink()
    sink = build_sink(data_dir, log=log, on_ack=timing.on_ack)
    timing.inner = sink
    await sink.start()
    demo = DemoSource(groups=groups, rate_per_s=rate, seed=first_id, first_message_id=first_id)
    rss_peak = 0
    started = time.perf_counter()
    task = asyncio.create_task(demo.run(timing))
    try:
        deadline = started + (seconds if seconds is not None else 600)
        while time.perf_counter() < deadline and (count is None or timing.acked < count):
            rss_peak = max(rss_peak, psutil.Process().memory_info().rss)
            await asyncio.sleep(0.05)  # sampling interval of the benchmark
        elapsed = time.perf_counter() - started
        acked = timing.acked
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sink.close()
    return acked / elapsed, timing, rss_peak, sink.status().spooled


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=100_000, help="events for the throughput runs"
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="steady rate for the latency run"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument(
        "--sync-interval",
        default="2m",
        help="nats-server jetstream sync_interval (2m = the server default; always = fsync each)",
    )
    parser.add_argument("--small", action="store_true", help="quick run: 5,000 events, 3 s latency")
    args = parser.parse_args()
    if args.small:
        args.events, args.seconds = 5_000, 3.0
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        server = NatsServer(store_dir=Path(tmp) / "js", sync_interval=args.sync_interval)
        server.start()
        try:
            async with await EventLog.connect(server.url) as log:
                print(
                    f"nats-server sync_interval={args.sync_interval}; {psutil.cpu_count()} cpus (shared)"
                )
                raw = await baseline(log, args.events)
                print(f"baseline  append_many x1000, pre-built events : {raw:>10,.0f} events/s")
                rate, _, _, spooled = await through_sink(
                    log,
                    Path(tmp) / "a",
                    groups=args.groups,
                    rate=0,
                    seconds=None,
                    count=args.events,
                    first_id=20_000_000,
                )
                print(
                    f"throughput demo (unthrottled) -> sink -> ack  : {rate:>10,.0f} events/s  (target >= 5,000)"
                    f"  [{spooled:,} went through the spool]"
                )
                got, timing, rss, _ = await through_sink(
                    log,
                    Path(tmp) / "b",
                    groups=args.groups,
                    rate=args.rate,
                    seconds=args.seconds,
                    count=None,
                    first_id=30_000_000,
                )
                lat = timing.latencies_ms
                print(
                    f"steady    {args.rate:,.0f}/s for {args.seconds:.0f}s, {args.groups} groups: acked "
                    f"{got:,.0f}/s, {len(lat):,} samples"
                )
                print(
                    f"latency   handler -> ack  p50 {statistics.median(lat):6.2f} ms   p99 {pct(lat, 0.99):6.2f} ms"
                    f"   max {max(lat):6.2f} ms  (target p99 < 50 ms)"
                )
                print(
                    f"rss       during the steady run, peak          : {rss / 2**20:8.1f} MB  (target < 200 MB)"
                )
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"rss       whole process peak (ru_maxrss)        : {peak:8.1f} MB")
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
