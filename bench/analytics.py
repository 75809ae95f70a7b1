"""Analytics benchmark: publish cost, freshness and query time of the Parquet dataset.

Builds a DuckDB projection of N events (the replay benchmark's workload, applied straight to the
projection as a rebuild would: the log itself is not what this measures), publishes it once, then
runs the live projection with its publish loop and, per cycle, applies a batch of new events and
measures through the API's own reader (``api.analytics.SnapshotReader``):

- how long until the cycle's last event is visible to the API's analytics;
- the bytes the publish wrote (every new file under the dataset, merges and manifests included)
  against the bytes of the new records (their encoded size in the log);
- ``messages_per_day`` over all groups on the dataset.

Baselines from the same run: the DuckDB file's size (what the old whole-file snapshot copied every
cycle) and ``messages_per_day`` on the DuckDB table itself.

    python -m bench.analytics --n 5000000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from aaltohub import event_loop
from api.analytics import SnapshotReader
from bench.replay import PeakRss, generate
from eventlog import RawRecord
from projector.duckdb.dataset import dataset_dir, read_current
from projector.duckdb.projection import DuckDBProjection
from schemas.codec import Codec
from schemas.duckdb.queries import ANALYTICS_QUERIES
from schemas.events import Event
from schemas.subjects import subject_for

BATCH = 5000


def records(codec: Codec, events: Iterator[Event], first_seq: int, n: int) -> list[RawRecord]:
    """The next ``n`` events as log records from ``first_seq``."""
    return [
        RawRecord(seq, subject_for(e), codec.encode(e))
        for seq, e in zip(itertools.count(first_seq), itertools.islice(events, n), strict=False)
    ]


def files(root: Path) -> dict[Path, int]:
    """Every file under ``root`` and its size."""
    return {p: p.stat().st_size for p in root.rglob("*") if p.is_file()}


async def build(path: Path, codec: Codec, events: Iterator[Event], n: int) -> float:
    """Apply the first ``n`` events as a rebuild does; returns the seconds it took."""
    projection = DuckDBProjection(
        path=path,
        codec=codec,
        snapshot_interval_s=None,
        fold_interval_s=3600,
        commit_rows=150_000,
        memory_limit="400MB",
    )
    started = time.perf_counter()
    await projection.open()
    try:
        seq = 1
        while seq <= n:
            batch = records(codec, events, seq, min(BATCH, n - seq + 1))
            await projection.apply(batch, prepared=projection.prepare(batch))
            seq += len(batch)
        await projection.finish()
    finally:
        await projection.close()
    return time.perf_counter() - started


def query_s(run: object, reps: int = 3) -> float:
    """Median seconds of ``run()``."""
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def main(n: int, cycles: int, per_cycle: int, interval_s: float) -> None:
    codec = Codec()
    rss = PeakRss()
    events = iter(generate(n + cycles * per_cycle))
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as tmp:
        path = Path(tmp) / "analytics.duckdb"
        root = dataset_dir(path)
        build_s = await build(path, codec, events, n)
        print(f"built {n:,} events into DuckDB in {build_s:.1f}s; peak RSS {rss.peak_mb:.0f} MB")
        file_bytes = path.stat().st_size
        sql = ANALYTICS_QUERIES["messages_per_day"].sql
        params = {"chat_id": None, "since": None, "until": None}
        with duckdb.connect(str(path), read_only=True) as con:
            table_s = query_s(lambda: con.execute(sql, params).fetchall())

        rss.reset()
        projection = DuckDBProjection(path=path, codec=codec, snapshot_interval_s=interval_s)
        reader = SnapshotReader(root)
        seq = await projection.open()
        try:
            started = time.perf_counter()
            await projection.publish_now()
            full_s = time.perf_counter() - started
            dataset_bytes = sum(files(root).values())
            print(
                f"first publish (whole dataset): {full_s:.1f}s, {dataset_bytes / 1e6:.0f} MB "
                f"of Parquet; DuckDB file {file_bytes / 1e6:.0f} MB"
            )
            visible: list[float] = []
            ratios: list[float] = []
            written_total = new_total = 0
            for cycle in range(cycles):
                before = files(root)
                current = read_current(root)
                published = -1 if current is None else current[1].seq
                batch = records(codec, events, seq + 1, per_cycle)
                new_bytes = sum(len(r.data) for r in batch)
                await projection.apply(batch, caught_up=True, prepared=projection.prepare(batch))
                applied = time.perf_counter()
                seq = batch[-1].seq
                while True:
                    result = await reader.query(
                        "SELECT max(seq) AS seq FROM events", None, row_cap=1, timeout_s=10
                    )
                    if result.rows and result.rows[0][0] == seq:
                        break
                    await asyncio.sleep(0.02)
                visible.append(time.perf_counter() - applied)
                after = files(root)
                written = sum(size for p, size in after.items() if before.get(p) != size)
                written_total += written
                new_total += new_bytes
                ratios.append(written / new_bytes)
                print(
                    f"cycle {cycle + 1}: {per_cycle} events ({new_bytes / 1e3:.0f} kB in the log) "
                    f"visible after {visible[-1]:.2f}s; publish wrote {written / 1e3:.0f} kB "
                    f"({written / new_bytes:.2f}x); previous manifest seq {published}"
                )
            query = ANALYTICS_QUERIES["messages_per_day"].sql
            dataset_s = query_s(lambda: reader.run(query, params, row_cap=10**7, timeout_s=60))
        finally:
            await projection.close()
            reader.close()
        print()
        print(
            f"new event visible to the API's analytics: max {max(visible):.2f}s, "
            f"median {statistics.median(visible):.2f}s (publish interval {interval_s}s)"
        )
        print(
            f"bytes written per publish / new data: max {max(ratios):.2f}x, median "
            f"{statistics.median(ratios):.2f}x, total {written_total / new_total:.2f}x; "
            f"a whole-file snapshot would have copied {file_bytes / 1e6:.0f} MB each cycle"
        )
        print(
            f"messages_per_day over all groups: {dataset_s:.3f}s on the dataset, "
            f"{table_s:.3f}s on the DuckDB table; peak RSS live {rss.peak_mb:.0f} MB"
        )


def cli() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5_000_000, help="events before the live cycles")
    parser.add_argument("--cycles", type=int, default=12, help="live publish cycles to measure")
    parser.add_argument("--per-cycle", type=int, default=2000, help="new events per cycle")
    parser.add_argument("--interval", type=float, default=2.0, help="publish interval (s)")
    args = parser.parse_args()
    event_loop.run(main(args.n, args.cycles, args.per_cycle, args.interval))


if __name__ == "__main__":
    cli()
