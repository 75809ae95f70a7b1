"""Append throughput: our ``EventLog.append_many`` vs raw nats-py ``js.publish_async``, same server, same run.

For each nats-server ``sync_interval`` (the NATS default ``2m`` and ``always``) a private nats-server
is started; N realistic message events are appended by raw ``publish_async`` (payloads and ids
prepared before timing, ``Nats-Msg-Id`` set, completion by ``publish_async_completed``) into one
stream and by ``EventLog.append_many`` (encoding included, every ack checked) into another. Both
have dedup on. Prints events/s for both, the ratio, and the peak RSS; with both intervals, also
ours with ``always`` against raw with ``2m`` (the target for durable appends is >= 0.8x). Ours uses
atomic batches (nats-server >= 2.12); ``--one-by-one`` measures the per-event fallback instead.

    python -m bench.append --n 200000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import psutil

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog
from schemas import ids
from schemas.codec import Codec
from schemas.events import (
    Entity,
    Media,
    MessagePosted,
    MessageSnapshot,
    ReactionCount,
    ReplyTo,
    Sender,
)
from schemas.stream import StreamSpec
from schemas.subjects import subject_for

WORDS = (
    "telegram",
    "aalto",
    "kurssi",
    "tentti",
    "hello",
    "thanks",
    "meeting",
    "tomorrow",
    "room",
    "lecture",
    "exam",
    "link",
    "question",
    "answer",
    "sauna",
    "otaniemi",
    "campus",
    "group",
    "project",
    "deadline",
)


def realistic_events(n: int, *, seed: int = 1, chats: int = 50) -> list[MessagePosted]:
    """``n`` message events over ``chats`` supergroups, ~400 B each encoded, some with media/replies."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    events = []
    for i in range(1, n + 1):
        chat_id = -1001000000000 - i % chats
        words = rng.randint(5, 40)
        text = " ".join(rng.choice(WORDS) for _ in range(words))
        date = start + timedelta(seconds=i)
        message = MessageSnapshot(
            message_id=i,
            date=date,
            sender=Sender(
                id=100000 + rng.randint(0, 500),
                kind="user",
                display_name=f"User {rng.randint(0, 500)}",
                username=f"user{rng.randint(0, 500)}",
            ),
            text=text,
            entities=(Entity(type="url", offset=0, length=8, url="https://aalto.fi"),)
            if i % 7 == 0
            else (),
            reply_to=ReplyTo(message_id=i - 1) if i % 5 == 0 else None,
            views=rng.randint(0, 5000) if i % 3 == 0 else None,
            media=Media(
                type="photo",
                file_unique_id=f"AQAD{i}",
                size=rng.randint(10_000, 900_000),
                width=1280,
                height=960,
            )
            if i % 11 == 0
            else None,
            reactions=(ReactionCount(count=rng.randint(1, 9), emoji="👍"),) if i % 13 == 0 else (),
        )
        events.append(
            MessagePosted(
                event_id=ids.posted_id(chat_id, i, account="main"),
                account="main",
                observed_at=date,
                source="live",
                chat_id=chat_id,
                message=message,
            )
        )
    return events


class RssSampler:
    """Peak RSS of this process during a phase (sampled every 20 ms)."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self._proc.memory_info().rss)
            await asyncio.sleep(0.02)  # sampling period

    def __enter__(self) -> RssSampler:
        self.peak = self._proc.memory_info().rss
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = max(self.peak, self._proc.memory_info().rss)
        if self._task is not None:
            self._task.cancel()


async def raw_publish_async(
    url: str, events: Sequence[MessagePosted], *, codec: Codec
) -> tuple[float, int]:
    """Raw nats-py publish_async with Nats-Msg-Id into stream RAW; returns (seconds, peak RSS)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(publish_async_max_pending=4000)
        await js.add_stream(name="RAW", subjects=["raw.>"], duplicate_window=120)
        prepared = [("raw." + subject_for(e), codec.encode(e), e.event_id) for e in events]
        with RssSampler() as rss:
            started = time.perf_counter()
            for subject, data, event_id in prepared:
                await js.publish_async(subject, data, headers={"Nats-Msg-Id": event_id})
            await asyncio.wait_for(js.publish_async_completed(), timeout=600)
            elapsed = time.perf_counter() - started
        info = await js.stream_info("RAW")
        assert info.state.messages == len(events), (
            f"raw stored {info.state.messages} of {len(events)}"
        )
        return elapsed, rss.peak
    finally:
        await nc.close()


async def ours(
    url: str, events: Sequence[MessagePosted], *, batch: int, atomic: bool
) -> tuple[float, int]:
    """``EventLog.append_many`` in batches of ``batch`` into stream TELEGRAM; returns (seconds, peak RSS)."""
    spec = StreamSpec(allow_atomic=atomic)
    async with await EventLog.connect(url, spec=spec, append_deadline_s=600) as log:
        with RssSampler() as rss:
            started = time.perf_counter()
            for i in range(0, len(events), batch):
                await log.append_many(events[i : i + batch])
            elapsed = time.perf_counter() - started
        info = await log.info()
        assert info.messages == len(events), f"ours stored {info.messages} of {len(events)}"
        return elapsed, rss.peak


async def run_one(
    sync_interval: str, events: Sequence[MessagePosted], *, batch: int, atomic: bool
) -> tuple[float, float]:
    """Both variants on one fresh server with ``sync_interval``; prints one block of figures.

    Returns (raw events/s, ours events/s).
    """
    with tempfile.TemporaryDirectory(prefix="bench-append-") as tmp:
        server = NatsServer(store_dir=Path(tmp) / "store", sync_interval=sync_interval)
        server.start()
        try:
            raw_s, raw_rss = await raw_publish_async(server.url, events, codec=Codec())
            ours_s, ours_rss = await ours(server.url, events, batch=batch, atomic=atomic)
        finally:
            server.stop()
    n = len(events)
    raw_rate, ours_rate = n / raw_s, n / ours_s
    print(f"sync_interval={sync_interval}  n={n}  dedup=on")
    mib = 2**20
    print(
        f"  raw js.publish_async   {raw_rate:>10,.0f} events/s  ({raw_s:.2f}s, peak RSS {raw_rss / mib:.0f} MiB)"
    )
    print(
        f"  EventLog.append_many   {ours_rate:>10,.0f} events/s  ({ours_s:.2f}s, peak RSS {ours_rss / mib:.0f} MiB,"
        f" calls of {batch}, {'atomic batches' if atomic else 'one publish per event'})"
    )
    print(f"  ratio ours/raw         {ours_rate / raw_rate:>10.2f}x", flush=True)
    return raw_rate, ours_rate


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n", type=int, default=200_000, help="events per variant (default 200000)"
    )
    parser.add_argument(
        "--batch", type=int, default=10_000, help="events per append_many call (default 10000)"
    )
    parser.add_argument(
        "--sync",
        nargs="+",
        default=["2m", "always"],
        help="nats-server sync_interval values to run (default: 2m (the NATS default) and always)",
    )
    parser.add_argument(
        "--one-by-one",
        action="store_true",
        help="measure the per-event publish fallback (servers before 2.12) instead of atomic batches",
    )
    args = parser.parse_args()
    events = realistic_events(args.n)
    size = sum(len(Codec().encode(e)) for e in events[:1000]) / 1000
    print(f"{args.n} realistic message events, mean encoded size {size:.0f} B")
    rates = {}
    for sync_interval in args.sync:
        rates[sync_interval] = asyncio.run(
            run_one(sync_interval, events, batch=args.batch, atomic=not args.one_by_one)
        )
    if "always" in rates and "2m" in rates:
        # The target of durable appends: fsync on every write at (nearly) the unsynced raw rate.
        ratio = rates["always"][1] / rates["2m"][0]
        print(f"ours with always / raw publish_async with 2m: {ratio:.2f}x (target >= 0.8x)")
    print(
        f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
        "(machine shared with other jobs; figures are indicative)"
    )


if __name__ == "__main__":
    main()
