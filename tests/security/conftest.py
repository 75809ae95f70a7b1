"""A nats-server with the stack's users and permissions (as ``aaltohub up`` starts it), and its
users; the API as its entry points run it, with chosen bounds."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.nats_auth import NatsUsers, authorization_block, load_or_create_users, role_url
from aaltohub.service_api import serve, uvicorn_config
from api.config import ApiConfig
from eventlog import EventLog
from eventlog.permissions import ROLES
from schemas.stream import StreamSpec
from tests.api.conftest import ADMIN_TOKEN, JWT_SECRET
from tests.helpers import wait_until


@pytest.fixture
def nats_users(tmp_path: Path) -> NatsUsers:
    """Generated users of a fresh data dir."""
    return load_or_create_users(tmp_path / "data")


@pytest.fixture
def secured_nats(tmp_path: Path, nats_users: NatsUsers) -> Iterator[NatsServer]:
    """A nats-server that admits only the generated users, each with its role's permissions."""
    block = authorization_block(
        {role: nats_users.password(role) for role in ROLES}, stream=StreamSpec().name
    )
    server = NatsServer(store_dir=tmp_path / "jetstream", sync_interval="2m", authorization=block)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def operator_log(secured_nats: NatsServer, nats_users: NatsUsers) -> AsyncIterator[EventLog]:
    """The log as the operator (who created the stream)."""
    url = role_url(secured_nats.url, nats_users, "operator")
    log = await EventLog.connect(url, spec=StreamSpec(), ack_timeout_s=2.0, append_deadline_s=10.0)
    try:
        yield log
    finally:
        await log.close()


@dataclass(frozen=True)
class BoundedApi:
    """A running API (production uvicorn settings) and how to stop it early."""

    url: str
    stop: Callable[[], Awaitable[None]]


StartApi = Callable[..., Awaitable[BoundedApi]]


@pytest.fixture
async def start_bounded_api(
    migrated_db: str, nats_server: NatsServer, event_log: EventLog, tmp_path: Path
) -> AsyncIterator[StartApi]:
    """Start the API with ``uvicorn_config`` and ``serve`` (as ``up`` and ``aaltohub api`` do), the
    uvicorn bounds given as keywords and ``config`` fields overriding the test config."""
    tasks: list[asyncio.Task[None]] = []
    sockets: list[socket.socket] = []

    async def stop_task(task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def start(
        config: dict[str, object] | None = None,
        *,
        max_connections: int = 1000,
        header_timeout_s: float = 10.0,
        write_stall_s: float = 30.0,
    ) -> BoundedApi:
        fields: dict[str, object] = {
            "live_buffer_events": 1_000_000,  # the write-stall bound must end it, not the overflow
            **(config or {}),
        }
        api_config = ApiConfig(
            database_url=SecretStr(migrated_db),
            nats_url=nats_server.url,
            duckdb_snapshot_dir=tmp_path / "snapshots",
            jwt_secret=SecretStr(JWT_SECRET),
            admin_token=SecretStr(ADMIN_TOKEN),
            **fields,  # type: ignore[arg-type]
        )
        sock = socket.create_server(("127.0.0.1", 0))
        sockets.append(sock)
        port = sock.getsockname()[1]
        uv = uvicorn_config(
            api_config,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            max_connections=max_connections,
            header_timeout_s=header_timeout_s,
            write_stall_s=write_stall_s,
        )
        task = asyncio.create_task(serve(uv, sock=sock))
        tasks.append(task)
        url = f"http://127.0.0.1:{port}"

        async def healthy() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(base_url=url, timeout=2) as client:
                    return (await client.get("/health")).status_code == 200
            return False

        await wait_until(healthy, timeout=30)
        return BoundedApi(url=url, stop=lambda: stop_task(task))

    try:
        yield start
    finally:
        for task in tasks:
            await stop_task(task)
        for sock in sockets:
            sock.close()
