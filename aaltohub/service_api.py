"""The API as a service of ``aaltohub up``: uvicorn run programmatically with an ``ApiConfig`` from Settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from aaltohub.admin_token import ensure_admin_token, token_file
from aaltohub.console_key import ensure_console_key
from aaltohub.http_protocol import bounded_protocols
from aaltohub.identity import StackIdentity, verify_stack
from aaltohub.services import ServiceContext, ServiceSpec
from aaltohub.settings import Settings, comma_list
from aaltohub.stack_file import connect_host
from aaltohub.stream import stream_spec
from api.app import create_app
from api.config import ApiConfig
from eventlog import EventLog

log = logging.getLogger(__name__)


def snapshot_dir(duckdb_path: Path) -> Path:
    """Where the projector publishes DuckDB read snapshots for ``duckdb_path``."""
    return duckdb_path.parent / "snapshots"


def api_config(
    settings: Settings, *, nats_url: str, database_url: str, duckdb_path: Path
) -> ApiConfig:
    """The API's config from the settings and the resolved connection targets."""
    return ApiConfig(
        database_url=SecretStr(database_url),
        nats_url=nats_url,
        duckdb_snapshot_dir=snapshot_dir(duckdb_path),
        stream=stream_spec(settings),
        jwt_secret=settings.supabase_jwt_secret,
        jwks_url=settings.api_jwks_url,
        jwt_audience=settings.api_jwt_audience,
        jwt_issuer=settings.api_jwt_issuer,
        max_body_bytes=settings.api_max_body_bytes,
        body_timeout_s=settings.api_body_timeout_s,
        public_metrics=settings.api_public_metrics,
        public_docs=settings.api_public_docs,
        new_user_role=settings.api_new_user_role,
        admin_token=settings.admin_token,
        db_pool_max=settings.api_db_pool_max,
        min_seq_wait_s=settings.api_min_seq_wait_s,
        command_timeout_s=settings.api_command_timeout_s,
        sql_row_cap=settings.api_sql_row_cap,
        sql_timeout_s=settings.api_sql_timeout_s,
        sql_max_response_bytes=settings.api_sql_max_response_bytes,
        analytics_memory_limit=settings.api_analytics_memory_limit,
        analytics_threads=settings.api_analytics_threads,
        live_buffer_events=settings.api_live_buffer_events,
        live_history_events=settings.api_live_history_events,
        cors_origins=tuple(comma_list(settings.cors_origins)),
        supabase_url=settings.supabase_url,
        supabase_anon_key=settings.supabase_anon_key,
        media_dir=None if settings.media_in_bucket else settings.media_root,
        media_bucket=settings.media_bucket if settings.media_in_bucket else None,
        supabase_service_key=settings.supabase_service_key if settings.media_in_bucket else None,
        console_key=settings.console_key or ensure_console_key(settings.data_path),
    )


def uvicorn_config(
    config: ApiConfig,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    max_connections: int = 1000,
    header_timeout_s: float = 10.0,
    write_stall_s: float = 30.0,
) -> uvicorn.Config:
    """Uvicorn settings for the API: no access log (queries may carry tokens), no per-message deflate;
    a connection beyond ``max_connections`` gets 503 and is closed, one whose request headers are
    not in after ``header_timeout_s`` gets 408 and is closed, an idle one is closed after 5 s, and
    one whose peer leaves our writes unread for ``write_stall_s`` is aborted."""
    http, ws = bounded_protocols(
        header_timeout_s=header_timeout_s,
        max_connections=max_connections,
        write_stall_s=write_stall_s,
    )
    return uvicorn.Config(
        create_app(config),
        host=host,
        port=port,
        http=http,
        log_level=log_level.lower(),
        access_log=False,
        lifespan="on",
        ws=ws,
        ws_per_message_deflate=False,
        log_config=None,
        proxy_headers=False,
        limit_concurrency=max_connections,
        timeout_keep_alive=5,  # idle keep-alive connections are closed after 5 s
    )


class SignalFreeServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host (``aaltohub up`` owns SIGINT/SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install nothing."""
        yield


async def serve(
    config: uvicorn.Config,
    *,
    handle_signals: bool = False,
    sock: socket.socket | None = None,
) -> None:
    """Run uvicorn until cancelled (or a signal, if it handles them), then shut it down gracefully.

    With ``sock`` uvicorn serves on a duplicate of that bound socket (the caller keeps the port).
    """
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        # A stop requested while the caller was still getting ready (e.g. checking the stack's
        # identity) can be swallowed by an inner ``wait_for`` on Python 3.11; it still counts here.
        # Starting uvicorn now would leave a server nobody stops.
        raise asyncio.CancelledError
    server = uvicorn.Server(config) if handle_signals else SignalFreeServer(config)
    sockets = [sock.dup()] if sock is not None else None
    task = asyncio.create_task(server.serve(sockets=sockets), name="uvicorn")
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=10)
        except TimeoutError:
            server.force_exit = True
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=5)
        raise


async def verify_api_stack(config: ApiConfig, *, expected: StackIdentity | None) -> None:
    """Before serving: ``ForeignStack`` unless the log and the database are this stack's."""
    async with await EventLog.connect(
        config.nats_url, spec=config.stream, name="aaltohub-api-identity", ensure=False
    ) as event_log:
        await verify_stack(
            event_log, config.database_url.get_secret_value(), expected=expected, claim=False
        )


def up_settings(settings: Settings) -> Settings:
    """``settings`` with an admin token: the configured one, else the data dir's (made on first use)."""
    if settings.admin_token is not None:
        return settings
    return settings.model_copy(update={"admin_token": ensure_admin_token(settings.data_path)})


async def run(ctx: ServiceContext) -> None:
    """Serve the API for ``aaltohub up`` until cancelled."""
    config = api_config(
        up_settings(ctx.settings),
        nats_url=ctx.nats_url_as("api"),
        database_url=ctx.database_url_as("api"),
        duckdb_path=ctx.duckdb_path,
    )
    await verify_api_stack(config, expected=ctx.identity)
    await serve(
        uvicorn_config(
            config,
            host=ctx.settings.api_host,
            port=api_port(ctx),
            log_level=ctx.settings.log_level,
            max_connections=ctx.settings.api_max_connections,
            header_timeout_s=ctx.settings.api_header_timeout_s,
            write_stall_s=ctx.settings.api_write_stall_s,
        ),
        sock=ctx.api_socket,
    )


def api_port(ctx: ServiceContext) -> int:
    """The port the API listens on: the socket ``up`` bound, else the configured one."""
    if ctx.api_socket is not None:
        return int(ctx.api_socket.getsockname()[1])
    return ctx.settings.api_port


def describe(ctx: ServiceContext) -> str:
    """Where the API and the console listen, and where the admin token is."""
    url = f"http://{ctx.settings.api_host}:{api_port(ctx)}"
    if ctx.settings.admin_token is not None:
        where = "the admin token is AALTOHUB_ADMIN_TOKEN"
    else:
        up_settings(ctx.settings)  # the first `up` makes the token now, so the hint is true
        where = f"admin token: cat {token_file(ctx.settings.data_path)}"
    return f"{url}\n  console   {url}/ui/ ({where})"


async def answers_http(ctx: ServiceContext) -> None:
    """Return once the API answers an HTTP request (any status): uvicorn is serving.

    ``up`` listens on the API's socket before uvicorn starts, so a connection succeeds at once and
    the request waits in the backlog until uvicorn takes it; a connection that ends without an
    answer (the service restarting) is tried again. The caller bounds the wait.
    """
    host, port = connect_host(ctx.settings.api_host), api_port(ctx)
    request = f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request)
                if (await reader.readline()).startswith(b"HTTP/"):
                    return
            finally:
                writer.close()
        except OSError as e:
            log.debug("API not answering yet: %s", e)
        await asyncio.sleep(0.2)  # a refused or dropped connection: the API is (re)starting


SERVICE = ServiceSpec(name="api", run=run, stop_order=0, describe=describe, ready=answers_http)
