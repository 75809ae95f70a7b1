"""Rebuild benchmark: generate N events, append them, rebuild each projection from seq 1.

Prints events/s per projection and the peak RSS of each phase, beside the raw limits measured in
the same run on the same stream: the fastest plain read (``EventLog.read_raw``, pipelined pulls)
vs nats-py ``fetch()``, and a bare binary COPY of the same message rows into an index-free table.

    python -m bench.replay --n 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats as nats_client
import psutil
import psycopg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from aaltohub import event_loop
from aaltohub.embedded.nats_server import NatsServer
from aaltohub.embedded.postgres import PostgresServer
from aaltohub.migrate import apply_migrations
from eventlog import EventLog
from projector.postgres.rows import MESSAGE_STAGE_COLUMNS, build_rows
from projector.rebuild_postgres import rebuild_postgres
from schemas import ids
from schemas.events import (
    Event,
    Media,
    MediaType,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    MessageSnapshot,
    ReplyTo,
    Sender,
    Source,
)
from schemas.stream import StreamSpec

WORDS = (
    "привет как дела сегодня встреча в университете the meeting is at noon please bring your laptop "
    "kurssi luento tentti deadline 🎉 https://aalto.fi check this out ok thanks 👍 lol"
).split()
MEDIA: tuple[MediaType, ...] = (
    "photo",
    "video",
    "document",
    "sticker",
    "voice",
    "animation",
    "webpage",
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class PeakRss:
    """Samples the RSS of this process and its helper processes (not the servers it started) in a
    thread; ``peak_mb`` since the last ``reset``.

    Finding the helpers scans every process of the machine (``children()`` reads all of /proc), so
    it runs every ``_HELPERS_EVERY`` samples: every sample cost a tenth of a core, taken from the
    rebuild it measures."""

    _HELPERS_EVERY = 10  # samples (0.5 s); helpers live for the whole load

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._peak = 0
        self._helpers: list[psutil.Process] = []
        self._samples = 0
        # Memory held outside every process's RSS (a DuckDB rebuild's batches and tables handed to
        # and from its helper as files in memory); set by the rebuild that has some.
        self.held_outside: Callable[[], int] = lambda: 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _find_helpers(self) -> list[psutil.Process]:
        helpers = []
        for child in self._proc.children():
            try:
                if "multiprocessing" in " ".join(child.cmdline()):
                    helpers.append(child)
            except psutil.Error:
                pass  # it exited meanwhile
        return helpers

    def _rss(self, *, find: bool = True) -> int:
        if find:
            self._helpers = self._find_helpers()
        total = self._proc.memory_info().rss + self.held_outside()
        for helper in self._helpers:
            try:
                total += helper.memory_info().rss
            except psutil.Error:
                pass  # it exited meanwhile
        return int(total)

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self._samples += 1
            find = self._samples % self._HELPERS_EVERY == 0
            self._peak = max(self._peak, self._rss(find=find))

    def reset(self) -> None:
        self._peak = self._rss()

    @property
    def peak_mb(self) -> float:
        return max(self._peak, self._rss()) / 2**20

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def generate(n: int, *, groups: int = 300, seed: int = 7) -> Iterator[Event]:
    """A realistic mix: ~85 % posts, ~10 % edits of recent messages, ~5 % deletes; Pareto group sizes;
    a fifth of the groups are basic groups (account-scoped ids, deletes without chat id)."""
    rng = random.Random(seed)
    chats = [
        (-1_000_000_000_000 - 1_500_000_000 - g) if g % 5 else -(400_000 + g) for g in range(groups)
    ]
    weights = [1 / (i + 1) ** 1.1 for i in range(groups)]
    next_id = dict.fromkeys(chats, 0)
    account_next = 0
    recent: dict[int, list[int]] = {c: [] for c in chats}
    # A message's date never changes (Telegram): an edit carries its post's date.
    dates: dict[int, dict[int, datetime]] = {c: {} for c in chats}
    for i in range(n):
        chat = rng.choices(chats, weights)[0]
        when = T0 + timedelta(seconds=i * 2)
        roll = rng.random()
        known = recent[chat]
        if roll < 0.10 and known:
            mid = rng.choice(known[-50:])
            snap = MessageSnapshot(
                message_id=mid,
                date=dates[chat][mid],
                edit_date=when,
                text=" ".join(rng.choices(WORDS, k=18)) + " (edited)",
                sender=Sender(id=100 + mid % 997, kind="user", display_name=f"user{mid % 997}"),
            )
            yield MessageEdited(
                event_id=ids.edited_id(chat, snap, account="main"),
                account="main",
                observed_at=when,
                source="live",
                chat_id=chat,
                message=snap,
            )
            continue
        if roll < 0.15 and known:
            mid = known.pop(rng.randrange(len(known)))
            dates[chat].pop(mid, None)
            scoped = chat < -1_000_000_000_000
            yield MessageDeleted(
                event_id=ids.deleted_id(
                    account="main", chat_id=chat if scoped else None, message_id=mid
                ),
                account="main",
                observed_at=when,
                source="live",
                chat_id=chat if scoped else None,
                message_id=mid,
            )
            continue
        if chat < -1_000_000_000_000:
            next_id[chat] += 1
            mid = next_id[chat]
        else:
            account_next += 1
            mid = account_next
        known.append(mid)
        dates[chat][mid] = when
        if len(known) > 200:
            for old in known[:100]:
                dates[chat].pop(old, None)
            del known[:100]
        source: Source = "live" if roll < 0.8 else ("backfill" if roll < 0.95 else "gapfill")
        lag = {"live": 0.4, "backfill": 86_400.0, "gapfill": 600.0}[source] * (0.5 + rng.random())
        media = (
            Media(
                type=rng.choice(MEDIA),
                file_unique_id=f"f{i}",
                size=rng.randrange(10_000, 5_000_000),
            )
            if rng.random() < 0.2
            else None
        )
        reply = (
            ReplyTo(message_id=rng.choice(known)) if len(known) > 2 and rng.random() < 0.3 else None
        )
        snap = MessageSnapshot(
            message_id=mid,
            date=when,
            text=" ".join(rng.choices(WORDS, k=rng.randrange(4, 30))),
            sender=Sender(id=100 + rng.randrange(997), kind="user", display_name="someone"),
            media=media,
            reply_to=reply,
            views=rng.randrange(1000) if chat % 7 == 0 else None,
        )
        yield MessagePosted(
            event_id=ids.posted_id(chat, mid, account="main"),
            account="main",
            observed_at=when + timedelta(seconds=lag),
            source=source,
            chat_id=chat,
            message=snap,
        )


async def append_all(event_log: EventLog, n: int) -> float:
    started = time.perf_counter()
    chunk: list[Event] = []
    for event in generate(n):
        chunk.append(event)
        if len(chunk) == 10_000:
            await event_log.append_many(chunk)
            chunk = []
    if chunk:
        await event_log.append_many(chunk)
    return time.perf_counter() - started


async def read_raw_rate(event_log: EventLog) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    async for batch in event_log.read_raw(1, batch_size=5000):
        count += len(batch)
    return count, time.perf_counter() - started


async def fetch_rate(nats_url: str, stream: str, limit: int) -> tuple[int, float]:
    """nats-py's own pull ``fetch()`` over the first ``limit`` records (ack none), on its own
    connection (``EventLog`` keeps its client to itself)."""
    client = await nats_client.connect(nats_url)
    try:
        return await _fetch(client.jetstream(), stream, limit)
    finally:
        await client.close()


async def _fetch(js: JetStreamContext, stream: str, limit: int) -> tuple[int, float]:
    sub = await js.pull_subscribe(
        "tg.>",
        durable=None,
        stream=stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30
        ),
    )
    count = 0
    started = time.perf_counter()
    try:
        while count < limit:
            msgs = await sub.fetch(min(1000, limit - count), timeout=5)
            count += len(msgs)
    finally:
        await sub.unsubscribe()
    return count, time.perf_counter() - started


def bare_copy_rate(database_url: str, n: int) -> tuple[int, float]:
    """Binary COPY of the same message rows into an index-free table, 5000 rows per transaction."""
    types = [t for _, t in MESSAGE_STAGE_COLUMNS]
    cols = ", ".join(f"{c} {t}" for c, t in MESSAGE_STAGE_COLUMNS)
    rows_total = 0
    elapsed = 0.0
    with psycopg.connect(database_url) as conn:
        conn.execute(f"DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy ({cols})")
        conn.commit()
        events: list[tuple[int, Event]] = []
        for seq, event in enumerate(generate(n), start=1):
            events.append((seq, event))
            if len(events) == 5000 or seq == n:
                rows = build_rows(events).messages
                events = []
                started = time.perf_counter()
                with (
                    conn.cursor() as cur,
                    cur.copy("COPY bench_copy FROM STDIN (FORMAT BINARY)") as copy,
                ):
                    copy.set_types(types)
                    for row in rows:
                        copy.write_row(row)
                conn.commit()
                elapsed += time.perf_counter() - started
                rows_total += len(rows)
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
    return rows_total, elapsed


async def postgres_rebuild(event_log: EventLog, database_url: str, rss: PeakRss) -> None:
    """Rebuild the Postgres projection from seq 1 and print its rate."""
    rss.reset()
    pg = await rebuild_postgres(log_=event_log, database_url=database_url)
    print(
        f"postgres rebuild {pg.events:>10,} events  {pg.events_per_s:>10,.0f} ev/s  "
        f"(replay {pg.events / pg.replay_s:,.0f} ev/s, then indexes + swap; total {pg.total_s:.1f}s)  "
        f"peak RSS {rss.peak_mb:,.0f} MB"
    )
    print(f"  search index built concurrently after the swap in {pg.search_index_s:.1f}s")
    with psycopg.connect(database_url) as conn:
        counts = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_deleted), sum(edit_count) FROM messages"
        ).fetchone()
    print(f"  messages rows {counts[0]:,}, deleted {counts[1]:,}, edits {counts[2]:,}")  # type: ignore[index]


async def duckdb_rebuild(event_log: EventLog, path: Path, rss: PeakRss) -> None:
    """Rebuild the DuckDB projection from seq 1 and print its rate."""
    # Imported here, not at the top: every helper process a rebuild spawns imports this module again
    # (multiprocessing's spawn re-imports the parent's main module), and the Postgres rebuild's helpers
    # would carry DuckDB and Arrow they never use (~45 MB each); the `aaltohub` command loads a
    # command's modules only when it runs, and this keeps the bench measuring what it does.
    from projector.duckdb.dataset import publish_file
    from projector.duckdb.prepare_process import handover_bytes
    from projector.rebuild_duckdb import rebuild_duckdb

    pid = os.getpid()
    rss.held_outside = lambda: handover_bytes(pid)

    rss.reset()
    dk = await rebuild_duckdb(log_=event_log, path=path)
    print(
        f"duckdb rebuild   {dk.events:>10,} events  {dk.events_per_s:>10,.0f} ev/s  "
        f"(load and fold {dk.replay_s:.1f}s; total {dk.total_s:.1f}s)  "
        f"peak RSS {rss.peak_mb:,.0f} MB"
    )
    # The rebuild leaves publishing to the projector: its next publish writes the file whole.
    started = time.perf_counter()
    published = await asyncio.to_thread(publish_file, path, dk.seq)
    written = 0 if published is None else published.bytes_written
    print(
        f"  the projector's first publish of it (whole, a new generation): "
        f"{time.perf_counter() - started:.1f}s, {written / 2**20:,.0f} MB of Parquet"
    )


async def main(n: int, keep: bool, only: str | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    nats = NatsServer(store_dir=work / "nats" / "js", sync_interval="2m")
    postgres = PostgresServer(data_dir=work / "pg" / "data")
    rss = PeakRss()
    try:
        nats.start()
        postgres.start()
        apply_migrations(postgres.url)
        print(
            f"bench/replay: N={n:,} events, {psutil.cpu_count()} CPUs (shared with other work), data in {work}"
        )
        async with await EventLog.connect(
            nats.url, spec=StreamSpec(), append_deadline_s=120
        ) as event_log:
            seconds = await append_all(event_log, n)
            info = await event_log.info()
            print(
                f"append           {info.messages:>10,} events  {info.messages / seconds:>10,.0f} ev/s  "
                f"({info.bytes / info.messages:.0f} B/event)"
            )
            rss.reset()
            count, seconds = await read_raw_rate(event_log)
            print(
                f"raw read_raw     {count:>10,} events  {count / seconds:>10,.0f} ev/s  "
                f"peak RSS {rss.peak_mb:,.0f} MB"
            )
            limit = min(n, 100_000)
            count, seconds = await fetch_rate(nats.url, event_log.stream_name, limit)
            print(
                f"raw nats fetch() {count:>10,} events  {count / seconds:>10,.0f} ev/s  (first {limit:,} only)"
            )
            rows, seconds = await asyncio.to_thread(bare_copy_rate, postgres.url, n)
            print(
                f"raw bare COPY    {rows:>10,} rows    {rows / seconds:>10,.0f} rows/s (binary, no indexes, "
                "5000/txn, COPY time only)"
            )
            if only != "duckdb":
                await postgres_rebuild(event_log, postgres.url, rss)
            if only != "postgres":
                await duckdb_rebuild(event_log, work / "analytics" / "analytics.duckdb", rss)
    finally:
        rss.stop()
        nats.stop()
        postgres.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument(
        "--only", choices=["postgres", "duckdb"], help="rebuild just this projection"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="  %(message)s")
    for phases in (
        "projector.postgres.bulk",
        "projector.postgres.schema",
        "projector.duckdb.projection",
    ):  # where a rebuild spends its time
        logging.getLogger(phases).setLevel(logging.INFO)
    event_loop.run(main(args.n, args.keep, args.only))
