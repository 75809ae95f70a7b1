"""Connections are bounded before and after authentication (issue 15, item 6).

The API runs as both entry points run it (``aaltohub.service_api.uvicorn_config`` and ``serve``)
over a real Postgres and nats-server. Replayed: a connection that never finishes its headers,
more connections than the limit, and live clients (SSE and WebSocket) that stop reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from websockets.asyncio.client import connect

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.service_api import serve, uvicorn_config
from api.config import ApiConfig
from eventlog import EventLog
from tests.api.conftest import ADMIN_TOKEN, JWT_SECRET
from tests.helpers import posted, wait_until

pytestmark = pytest.mark.timeout(120)

StartApi = Callable[..., Awaitable[str]]


@pytest.fixture
async def start_bounded_api(
    migrated_db: str, nats_server: NatsServer, event_log: EventLog, tmp_path: Path
) -> AsyncIterator[StartApi]:
    """Start the API with the production uvicorn settings and the given bounds; its base URL."""
    tasks: list[asyncio.Task[None]] = []
    sockets: list[socket.socket] = []

    async def start(**bounds: float) -> str:
        config = ApiConfig(
            database_url=SecretStr(migrated_db),
            nats_url=nats_server.url,
            duckdb_snapshot_dir=tmp_path / "snapshots",
            jwt_secret=SecretStr(JWT_SECRET),
            admin_token=SecretStr(ADMIN_TOKEN),
            live_buffer_events=1_000_000,  # the write-stall bound must end it, not the overflow
        )
        sock = socket.create_server(("127.0.0.1", 0))
        sockets.append(sock)
        port = sock.getsockname()[1]
        uv = uvicorn_config(config, host="127.0.0.1", port=port, log_level="warning", **bounds)  # type: ignore[arg-type]
        tasks.append(asyncio.create_task(serve(uv, sock=sock)))
        url = f"http://127.0.0.1:{port}"

        async def healthy() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(base_url=url, timeout=2) as client:
                    return (await client.get("/health")).status_code == 200
            return False

        await wait_until(healthy, timeout=30)
        return url

    try:
        yield start
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sock in sockets:
            sock.close()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def read_to_end(reader: asyncio.StreamReader, *, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection."""
    async with asyncio.timeout(timeout):
        return await reader.read()


async def live_subscribers(url: str) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    for line in response.text.splitlines():
        if line.startswith("aaltohub_api_live_subscribers "):
            return float(line.split()[1])
    raise AssertionError("no live subscriber gauge in /metrics")


def non_reading_socket(port: int) -> socket.socket:
    """A connected socket with a small receive buffer that the test never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # no autotuning to tens of MB
    sock.connect(("127.0.0.1", port))
    return sock


async def flood_log(event_log: EventLog, *, events: int = 3000) -> None:
    """Append big events until far more is queued for a client than socket buffers hold."""
    big = "z" * 4000
    for start in range(1, events + 1, 250):
        await event_log.append_many([posted(-1001, i, text=big) for i in range(start, start + 250)])


async def test_a_connection_that_never_finishes_its_headers_gets_408_and_is_closed(
    start_bounded_api: StartApi,
) -> None:
    url = await start_bounded_api(header_timeout_s=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: attacker\r\nX-Slow: ")
        await writer.drain()
        answer = await read_to_end(reader, timeout=10)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_a_connection_that_sends_nothing_is_closed(start_bounded_api: StartApi) -> None:
    url = await start_bounded_api(header_timeout_s=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
    try:
        answer = await read_to_end(reader, timeout=10)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_connections_beyond_the_limit_are_refused_at_once_and_health_recovers(
    start_bounded_api: StartApi,
) -> None:
    url = await start_bounded_api(max_connections=5, header_timeout_s=60.0)
    held = [await asyncio.open_connection("127.0.0.1", port_of(url)) for _ in range(5)]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
        refused = await read_to_end(reader, timeout=5)
        writer.close()
    finally:
        for _, w in held:
            w.close()
    assert refused.startswith(b"HTTP/1.1 503 ")
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        await wait_until(lambda: _health_ok(client), timeout=10)


async def _health_ok(client: httpx.AsyncClient) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return (await client.get("/health")).status_code == 200
    return False


async def test_an_sse_client_that_stops_reading_is_dropped(
    start_bounded_api: StartApi, event_log: EventLog
) -> None:
    url = await start_bounded_api(write_stall_s=1.0)
    sock = non_reading_socket(port_of(url))
    try:
        sock.sendall(
            f"GET /live/sse HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
        )
        await wait_until(lambda: _subscribers_are(url, 1), timeout=10)
        await flood_log(event_log)
        await wait_until(lambda: _subscribers_are(url, 0), timeout=30)
    finally:
        sock.close()


async def test_a_websocket_client_that_stops_reading_is_dropped(
    start_bounded_api: StartApi, event_log: EventLog
) -> None:
    url = await start_bounded_api(write_stall_s=1.0)
    sock = non_reading_socket(port_of(url))
    sock.setblocking(False)
    ws_url = url.replace("http://", "ws://") + "/live/ws"
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with connect(ws_url, sock=sock, additional_headers=headers, compression=None) as ws:
        ws.transport.pause_reading()  # the client stops reading; the kernel buffers fill up
        await wait_until(lambda: _subscribers_are(url, 1), timeout=10)
        await flood_log(event_log)
        await wait_until(lambda: _subscribers_are(url, 0), timeout=30)


async def _subscribers_are(url: str, n: int) -> bool:
    return await live_subscribers(url) == n
