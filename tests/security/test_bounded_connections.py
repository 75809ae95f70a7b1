"""Connections are bounded before and after authentication (issue 15, item 6).

The API runs as both entry points run it (``aaltohub.service_api.uvicorn_config`` and ``serve``)
over a real Postgres and nats-server. Replayed: a connection that never finishes its headers,
more connections than the limit, and live clients (SSE and WebSocket) that stop reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import pytest
from websockets.asyncio.client import connect

from eventlog import EventLog
from tests.api.conftest import ADMIN_TOKEN
from tests.helpers import posted, wait_until
from tests.security.conftest import StartApi

pytestmark = pytest.mark.timeout(120)


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
    url = (await start_bounded_api(header_timeout_s=1.0)).url
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: attacker\r\nX-Slow: ")
        await writer.drain()
        answer = await read_to_end(reader, timeout=10)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_a_connection_that_sends_nothing_is_closed(start_bounded_api: StartApi) -> None:
    url = (await start_bounded_api(header_timeout_s=1.0)).url
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
    try:
        answer = await read_to_end(reader, timeout=10)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_connections_beyond_the_limit_are_refused_at_once_and_health_recovers(
    start_bounded_api: StartApi,
) -> None:
    url = (await start_bounded_api(max_connections=5, header_timeout_s=60.0)).url
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
    url = (await start_bounded_api(write_stall_s=1.0)).url
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
    url = (await start_bounded_api(write_stall_s=1.0)).url
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


async def test_a_body_that_stalls_gets_408(start_bounded_api: StartApi) -> None:
    url = (await start_bounded_api({"body_timeout_s": 1.0})).url
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
    try:
        writer.write(
            b"POST /analytics/sql HTTP/1.1\r\nHost: attacker\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"sql": "'
        )
        await writer.drain()
        answer = await read_to_end(reader, timeout=15)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"title":"Request Timeout"' in answer
    assert b'"detail":"the request body stalled for 1 s"' in answer


async def test_an_oversized_body_announced_with_expect_is_refused_unread(
    start_bounded_api: StartApi,
) -> None:
    """``Expect: 100-continue``: the 413 comes at once, and no ``100 Continue`` asks for the body."""
    url = (await start_bounded_api()).url
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
    try:
        writer.write(
            b"POST /analytics/sql HTTP/1.1\r\nHost: client\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: 4194304\r\n\r\n"
        )
        await writer.drain()
        answer = await read_to_end(reader, timeout=15)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in answer
