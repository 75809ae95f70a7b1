"""Live WebSocket and SSE: delivery, filters, resume without gap or duplicate, slow-client cut-off."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import replace
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from api.config import ApiConfig
from eventlog import EventLog
from schemas import ids
from schemas.events import MessageDeleted
from tests.api.conftest import ADMIN_TOKEN, RunningApi, make_jwt, start_api, stop_api
from tests.api.rows import insert_user
from tests.helpers import posted

CHAT = -1001
OTHER = -1002


def ws_url(api: RunningApi, **params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"access_token": ADMIN_TOKEN, **params}.items())
    return api.url.replace("http://", "ws://") + f"/live/ws?{query}"


async def receive_events(
    ws: ClientConnection, n: int, *, timeout: float = 10.0
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out += json.loads(await ws.recv())
    return out


async def sse_events(
    client: httpx.AsyncClient,
    n: int,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str | int] | None = None,
    timeout: float = 10.0,
) -> list[tuple[int, str, Any]]:
    """The first ``n`` SSE events as (id, event, data); then the connection is dropped."""
    out: list[tuple[int, str, Any]] = []
    fields: dict[str, str] = {}
    async with (
        asyncio.timeout(timeout),
        client.stream("GET", "/live/sse", headers=headers, params=params) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line == "":
                if "data" in fields:
                    out.append(
                        (
                            int(fields.get("id", "0")),
                            fields.get("event", ""),
                            json.loads(fields["data"]),
                        )
                    )
                    if len(out) >= n:
                        return out
                fields = {}
            elif not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.lstrip(" ")
    return out


async def test_websocket_receives_appended_events(api: RunningApi) -> None:
    async with connect(ws_url(api)) as ws:
        await api.event_log.append_many([posted(CHAT, i) for i in range(1, 6)])
        events = await receive_events(ws, 5)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert events[0]["kind"] == "message.posted"
    assert events[0]["event"]["message"]["message_id"] == 1


async def test_websocket_filters_by_group(api: RunningApi) -> None:
    async with connect(ws_url(api, chat_id=OTHER)) as ws:
        await api.event_log.append_many(
            [posted(CHAT, 1), posted(OTHER, 1), posted(CHAT, 2), posted(OTHER, 2)]
        )
        events = await receive_events(ws, 2)
    assert [(e["chat_id"], e["seq"]) for e in events] == [(OTHER, 2), (OTHER, 4)]


async def test_websocket_filters_by_kind(api: RunningApi) -> None:
    deleted = MessageDeleted(
        event_id=ids.deleted_id(account="main", chat_id=CHAT, message_id=1),
        account="main",
        observed_at=posted(CHAT, 1).observed_at,
        source="live",
        chat_id=CHAT,
        message_id=1,
    )
    async with connect(ws_url(api, kind="message.deleted")) as ws:
        await api.event_log.append_many([posted(CHAT, 1), deleted, posted(CHAT, 2)])
        events = await receive_events(ws, 1)
    assert [(e["seq"], e["kind"]) for e in events] == [(2, "message.deleted")]


async def test_websocket_resumes_after_disconnect_without_gap_or_duplicate(api: RunningApi) -> None:
    async with connect(ws_url(api)) as ws:
        await api.event_log.append_many([posted(CHAT, i) for i in range(1, 6)])
        first = await receive_events(ws, 5)
    await api.event_log.append_many([posted(CHAT, i) for i in range(6, 11)])  # while disconnected
    async with connect(ws_url(api, after_seq=first[-1]["seq"])) as ws:
        await api.event_log.append_many([posted(CHAT, i) for i in range(11, 14)])
        second = await receive_events(ws, 8)
    assert [e["seq"] for e in first + second] == list(range(1, 14))


async def test_resume_from_before_the_servers_start_reads_the_log(
    api_config: ApiConfig, event_log: EventLog
) -> None:
    await event_log.append_many(
        [posted(CHAT, i) for i in range(1, 8)]
    )  # before the API (and its memory) exist
    server, task, url = await start_api(api_config)
    try:
        running = RunningApi(url=url, config=api_config, database_url="", event_log=event_log)
        async with connect(ws_url(running, after_seq=2, chat_id=CHAT)) as ws:
            await event_log.append(posted(CHAT, 8))
            events = await receive_events(ws, 6)
    finally:
        await stop_api(server, task)
    assert [e["seq"] for e in events] == [3, 4, 5, 6, 7, 8]


async def test_websocket_without_token_is_rejected(api: RunningApi) -> None:
    url = api.url.replace("http://", "ws://") + "/live/ws"
    with pytest.raises(InvalidStatus) as info:
        async with connect(url):
            pass
    assert info.value.response.status_code == 403


async def test_sse_streams_events_with_seq_ids(api: RunningApi) -> None:
    async with api.client() as client:
        reader = asyncio.create_task(sse_events(client, 3))
        await _wait_subscribed(api, 1)
        await api.event_log.append_many([posted(CHAT, i) for i in range(1, 4)])
        events = await reader
    assert [(i, kind) for i, kind, _ in events] == [
        (1, "message.posted"),
        (2, "message.posted"),
        (3, "message.posted"),
    ]


async def test_sse_resumes_from_last_event_id_without_gap_or_duplicate(api: RunningApi) -> None:
    async with api.client() as client:
        reader = asyncio.create_task(sse_events(client, 4))
        await _wait_subscribed(api, 1)
        await api.event_log.append_many([posted(CHAT, i) for i in range(1, 5)])
        first = await reader
        await api.event_log.append_many(
            [posted(CHAT, i) for i in range(5, 9)]
        )  # while disconnected
        second = await sse_events(client, 4, headers={"Last-Event-ID": str(first[-1][0])})
    assert [i for i, _, _ in first + second] == list(range(1, 9))


async def test_sse_filters_by_group(api: RunningApi) -> None:
    await api.event_log.append_many([posted(CHAT, 1), posted(OTHER, 1), posted(CHAT, 2)])
    async with api.client() as client:
        events = await sse_events(client, 2, params={"chat_id": CHAT, "after_seq": 0})
    assert [i for i, _, _ in events] == [1, 3]


async def test_sse_needs_a_user(api: RunningApi) -> None:
    async with api.client(token=None) as client:
        response = await client.get("/live/sse")
    assert response.status_code == 401


async def test_slow_websocket_client_is_cut_off_with_a_reason(
    api_config: ApiConfig, event_log: EventLog
) -> None:
    server, task, url = await start_api(replace(api_config, live_buffer_events=200))
    try:
        running = RunningApi(url=url, config=api_config, database_url="", event_log=event_log)
        big = "x" * 4000
        port = int(url.rsplit(":", 1)[1])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # no autotuning to tens of MB
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        async with (
            connect(ws_url(running), sock=sock, max_queue=1, compression=None) as slow,
            connect(ws_url(running)) as fast,
        ):
            slow.transport.pause_reading()  # the client stops reading; the kernel buffers fill up
            for start in range(1, 3001, 250):
                await event_log.append_many(
                    [posted(CHAT, i, text=big) for i in range(start, start + 250)]
                )
            received = await receive_events(fast, 3000, timeout=60)
            slow.transport.resume_reading()
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(slow.recv(), timeout=30)
    finally:
        await stop_api(server, task)
    assert len(received) == 3000
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 4008
    assert "buffer overflow" in info.value.rcvd.reason


async def test_many_subscribers_share_one_log_consumer(api: RunningApi) -> None:
    sockets = [await connect(ws_url(api)).__aenter__() for _ in range(20)]
    try:
        await api.event_log.append(posted(CHAT, 1))
        for ws in sockets:
            assert [e["seq"] for e in await receive_events(ws, 1)] == [1]
        consumers = (await api.event_log.info()).consumers
    finally:
        for ws in sockets:
            await ws.close()
    assert consumers <= 1


async def _wait_subscribed(api: RunningApi, n: int) -> None:
    from tests.helpers import wait_until

    async def subscribed() -> bool:
        async with api.client() as client:
            text = (await client.get("/metrics")).text
        return f"aaltohub_api_live_subscribers {float(n)}" in text

    await wait_until(subscribed, timeout=10)


async def test_slow_sse_client_gets_an_overflow_event(
    api_config: ApiConfig, event_log: EventLog
) -> None:
    server, task, url = await start_api(replace(api_config, live_buffer_events=200))
    try:
        port = int(url.rsplit(":", 1)[1])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**24)
        writer.write(
            f"GET /live/sse HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
        )
        await writer.drain()
        await reader.readuntil(b"live from seq")  # subscribed
        writer.transport.pause_reading()  # type: ignore[attr-defined]
        big = "y" * 4000
        for start in range(1, 3001, 250):
            await event_log.append_many(
                [posted(CHAT, i, text=big) for i in range(start, start + 250)]
            )
        writer.transport.resume_reading()  # type: ignore[attr-defined]
        tail = await asyncio.wait_for(reader.readuntil(b"event: overflow\ndata: "), timeout=60)
        line = await asyncio.wait_for(reader.readline(), timeout=10)
        writer.close()
    finally:
        await stop_api(server, task)
    delivered = [int(x) for x in tail.split(b"\nid: ")[1:] for x in [x.split(b"\n", 1)[0]]]
    info = json.loads(line)
    assert "buffer overflow" in info["reason"]
    assert info["last_seq"] == (delivered[-1] if delivered else 0)


async def test_resume_while_appending_has_no_gap_or_duplicate(api: RunningApi) -> None:
    await api.event_log.append_many([posted(CHAT, i) for i in range(1, 101)])

    async def produce() -> None:
        for start in range(101, 401, 20):
            await api.event_log.append_many([posted(CHAT, i) for i in range(start, start + 20)])

    producer = asyncio.create_task(produce())
    try:
        async with connect(ws_url(api, after_seq=0)) as ws:
            events = await receive_events(ws, 400, timeout=30)
    finally:
        await producer
    assert [e["seq"] for e in events] == list(range(1, 401))


async def test_sse_accepts_an_access_token_parameter(api: RunningApi) -> None:
    await api.event_log.append(posted(CHAT, 1))
    async with api.client(token=None) as client:
        events = await sse_events(client, 1, params={"access_token": ADMIN_TOKEN, "after_seq": 0})
    assert [i for i, _, _ in events] == [1]


async def test_websocket_is_closed_when_its_token_expires(api: RunningApi) -> None:
    user_id = insert_user(api.database_url, role="user")
    token = make_jwt(user_id, expires_in_s=2)
    url = api.url.replace("http://", "ws://") + "/live/ws"
    async with connect(
        url, subprotocols=[Subprotocol("aaltohub.live"), Subprotocol(f"bearer.{token}")]
    ) as ws:
        assert ws.subprotocol == "aaltohub.live"
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401 and "fresh token" in closed.value.rcvd.reason


async def test_sse_ends_with_token_expired_when_its_token_expires(api: RunningApi) -> None:
    user_id = insert_user(api.database_url, role="user")
    token = make_jwt(user_id, expires_in_s=2)
    async with api.client(token=token) as client:
        events = await sse_events(client, 1, params={"after_seq": 0}, timeout=15)
    assert events[0][1] == "token-expired"
