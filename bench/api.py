"""API benchmark: page-read latency under 50 concurrent clients, live fan-out latency to 500 WebSockets.

Starts an embedded nats-server and Postgres, seeds one group, runs ``aaltohub api`` as a subprocess
(so server and load generator are separate processes) and prints figures next to raw baselines
measured in the same run: the same page query straight through psycopg, and append → receipt on a
direct ``EventLog.follow`` reader. Page reads run closed loop first (each client sends its next
request as soon as the last one returns: the saturation rate, where latency is mostly queueing),
then open loop at a quarter, half and three quarters of that rate (the latency a client sees below saturation).

    python bench/api.py --size small     # quick check
    python bench/api.py                  # full: 50 clients; 500 subscribers at 500 events/s
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import jwt
import psycopg
from psycopg_pool import AsyncConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aaltohub import event_loop
from aaltohub.embedded.nats_server import NatsServer
from aaltohub.embedded.postgres import PostgresServer
from aaltohub.migrate import apply_migrations
from eventlog import EventLog
from schemas import ids
from schemas.events import MessagePosted, MessageSnapshot, Sender

REPO = Path(__file__).resolve().parents[1]
CHAT = -1001000000001
SECRET = "bench-jwt-secret-0123456789abcdef0123"
PAGE_SQL = (
    "SELECT * FROM messages WHERE chat_id = %s AND message_id < %s AND NOT is_deleted "
    "ORDER BY message_id DESC LIMIT 51"
)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile of ``values`` (ms)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


def seed(url: str, n: int, user_id: uuid.UUID) -> None:
    """One group with ``n`` messages and a user."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO telegram_groups (chat_id, title, account) VALUES (%s, 'Bench', 'main')",
            (CHAT,),
        )
        cur.execute("INSERT INTO users (id, role) VALUES (%s, 'user')", (user_id,))
        with cur.copy(
            "COPY messages (chat_id, message_id, account, sender_id, sender_name, date, text, source, "
            "first_seq, last_seq, observed_at) FROM STDIN"
        ) as copy:
            for i in range(1, n + 1):
                copy.write_row(
                    (
                        CHAT,
                        i,
                        "main",
                        1000 + i % 50,
                        "Alice",
                        base + timedelta(seconds=i),
                        f"message number {i} with some ordinary chat text in it",
                        "live",
                        i,
                        i,
                        base,
                    )
                )
        cur.execute("ANALYZE messages")


class RawHttp:
    """A minimal keep-alive HTTP/1.1 GET client, so the load generator costs little CPU (httpx costs ~1 ms/req)."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self._addr = (host, port)
        self._token = token
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of ``GET path``."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(*self._addr)
        assert self._reader is not None
        self._writer.write(
            f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {self._token}\r\n\r\n".encode()
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line[15:])
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()


async def page_load(
    url: str, token: str, *, clients: int, duration_s: float, n_messages: int
) -> tuple[list[float], float]:
    """Closed loop: ``clients`` concurrent readers (one connection each) of random 50-message pages."""
    latencies: list[float] = []
    stop = time.perf_counter() + duration_s
    host, port = url.removeprefix("http://").split(":")

    async def reader() -> None:
        http = RawHttp(host, int(port), token)
        try:
            while time.perf_counter() < stop:
                before = random.randint(60, n_messages)
                t0 = time.perf_counter()
                status, body = await http.get(f"/groups/{CHAT}/messages?before={before}&limit=50")
                latencies.append((time.perf_counter() - t0) * 1000)
                assert status == 200 and body.count(b'"message_id":') == 50, body[:200]
        finally:
            await http.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(reader() for _ in range(clients)))
    return latencies, len(latencies) / (time.perf_counter() - t0)


async def paced_page_load(
    url: str, token: str, *, clients: int, rate: float, duration_s: float, n_messages: int
) -> tuple[list[float], float]:
    """Open loop: ``clients`` connections sharing ``rate`` requests/s on a fixed schedule; latency counts
    from each request's scheduled time, so a stalled server cannot hide its queue (no coordinated omission)."""
    latencies: list[float] = []
    host, port = url.removeprefix("http://").split(":")
    interval = clients / rate
    start = time.perf_counter() + 0.1
    stop = start + duration_s

    async def reader(k: int) -> None:
        http = RawHttp(host, int(port), token)
        due = start + k * interval / clients  # staggered, so the load is even
        try:
            while due < stop:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)  # the schedule of this client
                before = random.randint(60, n_messages)
                status, body = await http.get(f"/groups/{CHAT}/messages?before={before}&limit=50")
                latencies.append((time.perf_counter() - due) * 1000)
                assert status == 200 and body.count(b'"message_id":') == 50, body[:200]
                due += interval
        finally:
            await http.close()

    await asyncio.gather(*(reader(k) for k in range(clients)))
    return latencies, len(latencies) / (time.perf_counter() - start)


async def raw_page_load(
    db_url: str, *, clients: int, duration_s: float, n_messages: int
) -> tuple[list[float], float]:
    """The same query straight through a psycopg pool at the same concurrency."""
    latencies: list[float] = []
    stop = time.perf_counter() + duration_s
    async with AsyncConnectionPool(db_url, min_size=10, max_size=10, open=False) as pool:
        await pool.wait()

        async def reader() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                async with pool.connection() as conn:
                    cur = await conn.execute(PAGE_SQL, (CHAT, random.randint(60, n_messages)))
                    await cur.fetchall()
                latencies.append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(reader() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return latencies, len(latencies) / elapsed


def event(i: int) -> MessagePosted:
    """A message event stamped with the time of its append."""
    return MessagePosted(
        event_id=ids.posted_id(CHAT, 10_000_000 + i, account="main"),
        account="main",
        observed_at=datetime.now(UTC),
        source="live",
        chat_id=CHAT,
        message=MessageSnapshot(
            message_id=10_000_000 + i,
            date=datetime.now(UTC),
            sender=Sender(id=1, kind="user"),
            text=f"live {i}",
        ),
    )


async def produce(log: EventLog, *, rate: int, duration_s: float, start: int) -> int:
    """Append ``rate`` events per second in 10 ms ticks; returns how many."""
    n = 0
    t0 = time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < duration_s:
        due = int(elapsed * rate) - n
        if due > 0:
            await log.append_many([event(start + n + k) for k in range(due)])
            n += due
        await asyncio.sleep(0.01)  # pacing tick of the load generator
    return n


class RawWebSocket:
    """A minimal WebSocket client (handshake, unmasked server frames, pong): the load generator's CPU per
    frame is a few µs, where the ``websockets`` client costs ~100 µs and would compete with the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, url: str) -> RawWebSocket:
        """Open ``ws://host:port/path?query``."""
        rest = url.removeprefix("ws://")
        hostport, _, path = rest.partition("/")
        host, port = hostport.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        return cls(reader, writer)

    async def frames(self) -> AsyncIterator[bytes]:
        """Text/binary message payloads until the server closes; pings are answered."""
        read = self._reader.readexactly
        while True:
            b0, b1 = await read(2)
            length = b1 & 0x7F
            if length == 126:
                length = int.from_bytes(await read(2), "big")
            elif length == 127:
                length = int.from_bytes(await read(8), "big")
            payload = await read(length) if length else b""
            opcode = b0 & 0x0F
            if opcode == 0x8:
                return
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode in (0x1, 0x2):
                assert b0 & 0x80, "fragmented frames are not expected from the API"
                yield payload

    def _send(self, opcode: int, payload: bytes) -> None:
        assert len(payload) < 126, "control frames only: payload length fits the 7-bit field"
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    async def close(self) -> None:
        """Send a close frame and drop the connection."""
        with contextlib.suppress(OSError):
            self._send(0x8, b"\x03\xe8")
            self._writer.close()


def stamp_latency_ms(frame: bytes, now: datetime) -> float:
    """Receipt latency of the first (oldest) event in a frame, from its ``observed_at``."""
    k = frame.index(b'"observed_at":"') + 15
    sent = datetime.fromisoformat(frame[k : frame.index(b'"', k)].decode())
    return (now - sent).total_seconds() * 1000


def ws_client_process(ws_url: str, n: int, conn: Connection) -> None:
    """Child process: hold ``n`` WebSockets, time every frame's oldest event until told to stop."""

    async def run() -> tuple[list[float], int]:
        latencies: list[float] = []
        received = [0]
        sockets: list[RawWebSocket] = []
        for k in range(0, n, 50):
            sockets += await asyncio.gather(
                *(RawWebSocket.connect(ws_url) for _ in range(min(50, n - k)))
            )

        async def consume(ws: RawWebSocket) -> None:
            async for frame in ws.frames():
                latencies.append(stamp_latency_ms(frame, datetime.now(UTC)))
                received[0] += frame.count(b'"seq":')

        tasks = [asyncio.create_task(consume(ws)) for ws in sockets]
        conn.send("ready")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        return latencies, received[0]

    conn.send(event_loop.run(run()))


async def fanout(
    url: str,
    token: str,
    log: EventLog,
    *,
    subscribers: int,
    rate: int,
    duration_s: float,
    processes: int,
) -> tuple[list[float], list[float], int, int]:
    """Latency append → receipt at ``subscribers`` WebSockets held by client processes, and at one direct
    log follower in this process (the baseline)."""
    ws_url = url.replace("http://", "ws://") + f"/live/ws?chat_id={CHAT}&access_token={token}"
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for k in range(processes):
        parent, child = ctx.Pipe()
        share = subscribers // processes + (1 if k < subscribers % processes else 0)
        proc = ctx.Process(target=ws_client_process, args=(ws_url, share, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    loop = asyncio.get_running_loop()
    for pipe in pipes:
        assert await loop.run_in_executor(None, pipe.recv) == "ready"
    start_seq = (await log.info()).last_seq
    baseline: list[float] = []

    async def direct() -> None:
        async for batch in log.follow(start_seq + 1, max_wait_s=0.02):
            now = datetime.now(UTC)
            for rec in batch:
                baseline.append((now - rec.event.observed_at).total_seconds() * 1000)  # type: ignore[union-attr]

    follower = asyncio.create_task(direct())
    try:
        sent = await produce(log, rate=rate, duration_s=duration_s, start=start_seq)
        await asyncio.sleep(3)  # drain window after the producer stops
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        for pipe in pipes:
            pipe.send("stop")
    latencies: list[float] = []
    received = 0
    for pipe, proc in zip(pipes, procs, strict=True):
        lat, got = await loop.run_in_executor(None, pipe.recv)
        latencies += lat
        received += got
        proc.join(timeout=30)
    return latencies, baseline, sent, received


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=["small", "full"], default="full")
    parser.add_argument(
        "--subscribers", type=int, help="override the number of WebSocket subscribers"
    )
    parser.add_argument("--rate", type=int, help="override events/s of the fan-out run")
    parser.add_argument("--clients", type=int, help="override concurrent page readers")
    args = parser.parse_args()
    small = args.size == "small"
    clients, subs, rate = (10, 50, 100) if small else (50, 500, 500)
    clients, subs, rate = args.clients or clients, args.subscribers or subs, args.rate or rate
    duration = 5.0 if small else 15.0
    n_messages = 20_000
    print(
        f"size={args.size}: {clients} page clients, {subs} subscribers at {rate} events/s, {duration}s each; "
        f"cpus={os.cpu_count()} (shared with other work)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        root = Path(tmp)
        nats = NatsServer(store_dir=root / "js", sync_interval="2m")
        pg = PostgresServer(data_dir=root / "pg" / "data")
        nats.start()
        pg.start()
        proc: subprocess.Popen[bytes] | None = None
        try:
            db_url = pg.url
            apply_migrations(db_url)
            # The operator creates the stream (as `up` / `aaltohub log init` do); services never do.
            async with await EventLog.connect(nats.url, name="bench-setup"):
                pass
            user_id = uuid.uuid4()
            seed(db_url, n_messages, user_id)
            token = jwt.encode(
                {"sub": str(user_id), "aud": "authenticated", "exp": int(time.time()) + 3600},
                SECRET,
                algorithm="HS256",
            )
            port = 18000 + random.randint(0, 999)
            env = {
                **os.environ,
                "DATABASE_URL": db_url,
                "NATS_URL": nats.url,
                "SUPABASE_JWT_SECRET": SECRET,
                "AALTOHUB_API_PORT": str(port),
                "AALTOHUB_LOG_LEVEL": "WARNING",
                "AALTOHUB_DATA_DIR": str(root / "data"),
                "AALTOHUB_API_LIVE_BUFFER_EVENTS": "20000",
            }
            proc = subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, "-m", "aaltohub", "api"],
                env=env,
                cwd=str(REPO),
            )
            url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=url) as probe:
                for _ in range(300):
                    with contextlib.suppress(httpx.TransportError):
                        if (await probe.get("/health")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)  # startup poll
            await page_load(
                url, token, clients=clients, duration_s=1.0, n_messages=n_messages
            )  # warm-up
            raw, raw_rps = await raw_page_load(
                db_url, clients=clients, duration_s=duration, n_messages=n_messages
            )
            lat, rps = await page_load(
                url, token, clients=clients, duration_s=duration, n_messages=n_messages
            )
            print(
                f"page read (50 msgs) raw psycopg  : p50 {pct(raw, 50):6.1f} ms  p99 {pct(raw, 99):6.1f} ms  "
                f"{raw_rps:7.0f} req/s  (n={len(raw)})"
            )
            print(
                f"page read (50 msgs) via API      : p50 {pct(lat, 50):6.1f} ms  p99 {pct(lat, 99):6.1f} ms  "
                f"{rps:7.0f} req/s  (n={len(lat)}; closed loop = saturation; target p99 < 25 ms)"
            )
            for share in (0.25, 0.5, 0.75):
                paced_rate = max(1.0, round(rps * share, -1))
                plat, prps = await paced_page_load(
                    url,
                    token,
                    clients=clients,
                    rate=paced_rate,
                    duration_s=duration,
                    n_messages=n_messages,
                )
                print(
                    f"page read paced {paced_rate:5.0f} req/s       : p50 {pct(plat, 50):6.1f} ms  "
                    f"p99 {pct(plat, 99):6.1f} ms  {prps:7.0f} req/s  ({clients} clients, "
                    f"{share:.0%} of saturation, latency from the scheduled time)"
                )
            async with await EventLog.connect(nats.url, name="bench") as log:
                ws_lat, base_lat, sent, got = await fanout(
                    url, token, log, subscribers=subs, rate=rate, duration_s=duration, processes=2
                )
            print(
                f"live raw log follower           : p50 {pct(base_lat, 50):6.1f} ms  p99 {pct(base_lat, 99):6.1f} ms"
            )
            print(
                f"live fan-out {subs:4d} websockets    : p50 {pct(ws_lat, 50):6.1f} ms  p99 {pct(ws_lat, 99):6.1f} ms"
                f"  sent {sent} events, delivered {got}/{sent * subs} (target p99 < 100 ms)"
            )
            if ws_lat:
                print(f"{'':34}mean {statistics.fmean(ws_lat):.1f} ms over {len(ws_lat)} frames")
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            pg.stop()
            nats.stop()


if __name__ == "__main__":
    event_loop.run(main())
