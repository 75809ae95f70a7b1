"""The composition-root side: the ``aaltohub api`` command and the service spec for ``aaltohub up``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import httpx

from aaltohub.cli import build_parser
from aaltohub.embedded.nats_server import NatsServer
from aaltohub.service_api import SERVICE, api_config
from aaltohub.services import ServiceContext
from aaltohub.settings import load_settings
from eventlog import EventLog
from tests.helpers import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_api_command_is_registered() -> None:
    args = build_parser().parse_args(["api", "--port", "9999"])
    assert args.port == 9999


def test_config_from_settings_keeps_secrets_secret(tmp_path: Path) -> None:
    settings = load_settings(
        SUPABASE_JWT_SECRET="top-secret-value",
        AALTOHUB_ADMIN_TOKEN="admin-secret-value-0123456789abcdefgh",
        AALTOHUB_API_SQL_ROW_CAP=7,
    )
    config = api_config(
        settings,
        nats_url="nats://x",
        database_url="postgresql://u:pw-secret@h/db",
        duckdb_path=tmp_path / "analytics" / "a.duckdb",
    )
    assert config.sql_row_cap == 7
    assert config.duckdb_snapshot_dir == tmp_path / "analytics" / "snapshots"
    assert not any(
        s in repr(config)
        for s in ("top-secret-value", "admin-secret-value-0123456789abcdefgh", "pw-secret")
    )


async def test_service_serves_until_cancelled(
    migrated_db: str, nats_server: NatsServer, event_log: EventLog, tmp_path: Path
) -> None:
    # event_log: the operator created the stream (services never do; only `up` / `log init`).
    port = free_port()
    settings = load_settings(AALTOHUB_API_PORT=port, AALTOHUB_ADMIN_TOKEN="t" * 32)
    ctx = ServiceContext(
        settings=settings,
        nats_url=nats_server.url,
        database_url=migrated_db,
        duckdb_path=tmp_path / "a.duckdb",
    )
    assert SERVICE.stop_order == 0
    assert SERVICE.describe is not None
    assert SERVICE.describe(ctx).splitlines()[0] == f"http://127.0.0.1:{port}"
    task: asyncio.Future[None] = asyncio.ensure_future(SERVICE.run(ctx))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            async def healthy() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return bool((await client.get("/health")).json().get("status") == "ok")
                return False

            await wait_until(healthy, timeout=20)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=20)
    assert task.cancelled()
