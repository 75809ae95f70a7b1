"""Fixtures for the API: a real uvicorn server over real Postgres, NATS and a DuckDB snapshot file."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import jwt
import psycopg
import pytest
import uvicorn
from pydantic import SecretStr

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.service_api import SignalFreeServer
from api.app import create_app
from api.config import ApiConfig
from eventlog import EventLog
from projector.duckdb.dataset import DatasetPublisher
from schemas.duckdb.tables import DDL as DUCKDB_DDL

ADMIN_TOKEN = "static-admin-token-for-tests"
JWT_SECRET = "jwt-secret-for-tests-only-0123456789abcdef"


@dataclass(frozen=True)
class RunningApi:
    """A running API server and what it was built from."""

    url: str
    config: ApiConfig
    database_url: str
    event_log: EventLog

    def client(self, token: str | None = ADMIN_TOKEN) -> httpx.AsyncClient:
        """An HTTP client, authenticated with ``token`` (static admin by default)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> None:
        """Run one SQL statement on the API's database (as the projector would write)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(statement.encode(), params)


def make_jwt(
    sub: uuid.UUID | str,
    *,
    secret: str = JWT_SECRET,
    expires_in_s: float = 300,
    audience: str = "authenticated",
    **claims: object,
) -> str:
    """A Supabase-like access token (``claims`` added or overriding)."""
    now = datetime.now(UTC)
    return jwt.encode(
        {
            "sub": str(sub),
            "aud": audience,
            "role": "authenticated",
            "iat": now,
            "exp": now + timedelta(seconds=expires_in_s),
            **claims,
        },
        secret,
        algorithm="HS256",
    )


def write_snapshot(
    snapshot_dir: Path, name: str, rows: list[tuple[int, int, int, datetime, str, bool]]
) -> str:
    """Publish a dataset whose ``messages`` are ``rows`` through the projector's real publisher
    (from a DuckDB file ``name`` beside it); returns the snapshot name the API reports."""
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    path = snapshot_dir.parent / name
    path.unlink(missing_ok=True)
    conn = duckdb.connect(str(path))
    try:
        for statement in DUCKDB_DDL:  # the projector's real analytics tables
            conn.execute(statement)
        if rows:
            conn.executemany(
                "INSERT INTO messages (chat_id, message_id, sender_id, date, text, is_deleted) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        published = DatasetPublisher(snapshot_dir).publish(conn, len(rows), name, full=True)
    finally:
        conn.close()
    assert published is not None
    return published.manifest.relative_to(snapshot_dir).as_posix()


@pytest.fixture
def api_config(migrated_db: str, nats_server: NatsServer, tmp_path: Path) -> ApiConfig:
    """Config of a test API (small live buffer, short waits)."""
    return ApiConfig(
        database_url=SecretStr(migrated_db),
        nats_url=nats_server.url,
        duckdb_snapshot_dir=tmp_path / "analytics" / "snapshots",
        jwt_secret=SecretStr(JWT_SECRET),
        admin_token=SecretStr(ADMIN_TOKEN),
        min_seq_wait_s=1.0,
        command_timeout_s=1.0,
        sql_row_cap=100,
        sql_timeout_s=1.0,
        live_buffer_events=200,
        role_cache_s=0.0,
    )


async def start_api(config: ApiConfig) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """Start uvicorn in this loop on a free port."""
    server = SignalFreeServer(  # pytest keeps SIGINT/SIGTERM
        uvicorn.Config(
            create_app(config),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="websockets-sansio",
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn exited")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.01)  # readiness poll
    except BaseException:  # a server still starting would keep its pool and log connections
        if not task.done():
            await stop_api(server, task)
        raise
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


async def stop_api(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Stop a server started by ``start_api``."""
    server.should_exit = True
    try:
        await asyncio.wait_for(task, timeout=15)
    except TimeoutError:
        server.force_exit = True
        await asyncio.wait_for(task, timeout=5)


@pytest.fixture
async def api(api_config: ApiConfig, event_log: EventLog) -> AsyncIterator[RunningApi]:
    """A running API."""
    server, task, url = await start_api(api_config)
    try:
        yield RunningApi(
            url=url,
            config=api_config,
            database_url=api_config.database_url.get_secret_value(),
            event_log=event_log,
        )
    finally:
        await stop_api(server, task)


@pytest.fixture
def small_buffer_config(api_config: ApiConfig) -> Iterator[ApiConfig]:
    """Config with a tiny live buffer."""
    yield replace(api_config, live_buffer_events=20)
