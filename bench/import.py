"""Benchmark: import a generated N-message Telegram Desktop export into a fresh nats-server.

Prints, from the same run: the raw ijson parse-only rate of the file (C backend and, on a slice, the
pure-Python one), the import rate (messages/s) and its peak RSS, and the raw append rate of the log
(pre-built events through ``EventLog.append_many``). Targets (issue 5): ≥ 10,000 messages/s and
peak RSS < 300 MB for 1,000,000 messages.

    python -m bench.import [--messages 1000000] [--sync always] [--keep DIR]

``--sync`` is the nats-server ``sync_interval`` (default ``always``, as ``aaltohub up`` runs it:
fsync before every ack); appends go out as atomic batches where the server supports them.
``--nats-url`` imports into an already running server instead (e.g. the one of ``aaltohub up``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import ijson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.subcommands.import_export import (
    IMPORT_BATCH,
    IMPORT_BATCHES_AHEAD,
    import_sink,
    settle,
)
from eventlog import EventLog
from ingest.export import ExportImporter, ImportProgress
from schemas.stream import StreamSpec
from tests.helpers import posted
from tests.ingest.export.generate import write_single_chat_export

BATCH = IMPORT_BATCH * IMPORT_BATCHES_AHEAD  # the events of one import sink call


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def parse_only(path: Path, *, backend: str, limit: int | None = None) -> tuple[float, float]:
    """Messages/s of ijson building each message dict and nothing else."""
    parser = ijson.get_backend(backend)
    count = 0
    started = time.perf_counter()
    cpu = time.process_time()
    with path.open("rb") as f:
        for _ in parser.items(f, "messages.item", buf_size=256 * 1024):
            count += 1
            if limit is not None and count >= limit:
                break
    return count / (time.perf_counter() - started), (time.process_time() - cpu) / count * 1e6


async def run_import(
    url: str, path: Path, *, atomic: bool
) -> tuple[ImportProgress, float, int, float]:
    process = psutil.Process()
    gc.collect()
    baseline = process.memory_info().rss
    peak = baseline

    def sample(_: ImportProgress) -> None:
        nonlocal peak
        peak = max(peak, process.memory_info().rss)

    spec = StreamSpec(allow_atomic=atomic)
    async with await EventLog.connect(url, spec=spec, append_deadline_s=120.0) as log:
        # The same durable append path and batching as `aaltohub import`.
        sink = import_sink(path.parent / "data", log)
        await sink.start()
        started = time.perf_counter()
        cpu = time.process_time()
        try:
            progress = await ExportImporter(
                log=log,
                sink=sink,
                account="bench",
                batch_size=IMPORT_BATCH,
                in_flight=IMPORT_BATCHES_AHEAD,
                on_progress=sample,
            ).run(path)
            # The import is done when the log holds every event (not when they are spooled).
            await settle(sink, progress, stall_s=120)
        finally:
            await sink.close()
        elapsed = time.perf_counter() - started
        cpu_s = time.process_time() - cpu
        stored = (await log.info()).messages
        assert progress.spooled == 0, f"{progress.spooled} events were left in the spool"
        assert stored >= progress.imported, (stored, progress.imported)
    return progress, elapsed, int(peak), cpu_s


async def raw_append(url: str, count: int, *, atomic: bool) -> tuple[float, float]:
    """Messages/s appending pre-built MessagePosted events (encode + publish + ack) in the same batches."""
    events = [posted(-1009999, i, text="raw baseline message " * 5) for i in range(1, count + 1)]
    spec = StreamSpec(allow_atomic=atomic)
    async with await EventLog.connect(url, spec=spec, append_deadline_s=120.0) as log:
        started = time.perf_counter()
        cpu = time.process_time()
        for i in range(0, count, BATCH):
            await log.append_many(events[i : i + BATCH])
        return count / (time.perf_counter() - started), (time.process_time() - cpu) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument(
        "--raw-append", type=int, default=200_000, help="events for the raw append baseline"
    )
    parser.add_argument("--keep", type=Path, help="directory for the export and the server (kept)")
    parser.add_argument(
        "--sync",
        default="always",
        help="nats-server sync_interval of the private server (default always, as aaltohub up)",
    )
    parser.add_argument(
        "--nats-url", help="import into this running server (e.g. aaltohub up's) instead"
    )
    parser.add_argument(
        "--one-by-one",
        action="store_true",
        help="one publish per event (no atomic batches), the path of servers before 2.12",
    )
    args = parser.parse_args()
    atomic = not args.one_by_one
    work = args.keep or Path(tempfile.mkdtemp(prefix="aaltohub-import-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"python {sys.version.split()[0]}, ijson {ijson.__version__} backend {ijson.backend}, "
        f"{os.cpu_count()} cores, load avg {os.getloadavg()[0]:.1f}"
    )

    started = time.perf_counter()
    path = write_single_chat_export(work / "result.json", messages=args.messages)
    print(
        f"generated {args.messages:,} messages, {_mb(path.stat().st_size)} in {time.perf_counter() - started:.1f} s"
    )

    rate, cpu_us = parse_only(path, backend=ijson.backend)
    print(
        f"raw parse-only (ijson {ijson.backend}, items in C): {rate:,.0f} msgs/s, {cpu_us:.1f} CPU µs/msg"
    )
    slice_n = min(args.messages, 50_000)
    rate, cpu_us = parse_only(path, backend="python", limit=slice_n)
    print(
        f"raw parse-only (ijson python backend, first {slice_n:,}): {rate:,.0f} msgs/s, {cpu_us:.1f} CPU µs/msg"
    )

    server = NatsServer(store_dir=work / "jetstream", sync_interval=args.sync)
    if args.nats_url:
        url = args.nats_url
        print(f"importing into the running server at {url}")
    else:
        server.start()
        url = server.url
        print(f"private nats-server, sync_interval {args.sync}")
    print("appends: " + ("atomic batches" if atomic else "one publish per event"))
    try:
        progress, elapsed, peak, cpu_s = asyncio.run(run_import(url, path, atomic=atomic))
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(
            f"import: {progress.imported:,} messages in {elapsed:.1f} s = {progress.imported / elapsed:,.0f} msgs/s "
            f"(chats {progress.chats}, skipped {progress.skipped}, already present {progress.already_present}); "
            f"client {cpu_s / progress.imported * 1e6:.1f} CPU µs/msg = {cpu_s / elapsed:.0%} of a core"
        )
        print(
            f"import peak RSS: {_mb(peak)} sampled per batch; process max RSS so far {_mb(rss_peak)}"
        )
        started = time.perf_counter()
        again = asyncio.run(run_import(url, path, atomic=atomic))[0]
        print(
            f"re-import (idempotence check): {again.already_present:,} already present, {again.imported} "
            f"imported, in {time.perf_counter() - started:.1f} s"
        )
        rate, cpu_us = asyncio.run(raw_append(url, args.raw_append, atomic=atomic))
        print(
            f"raw append baseline ({args.raw_append:,} pre-built events, batches of {BATCH}): "
            f"{rate:,.0f} msgs/s, client {cpu_us:.1f} CPU µs/msg"
        )
    finally:
        server.stop()
    print(f"load avg at end {os.getloadavg()[0]:.1f} (the machine is shared with other jobs)")


if __name__ == "__main__":
    main()
