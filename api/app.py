"""``create_app(config)``: the FastAPI app; the lifespan opens the pool, the log, the live hub and analytics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from api.analytics import SnapshotReader
from api.auth import Authenticator
from api.config import ApiConfig
from api.consistency import SeqWatch
from api.db import Database, close_pool, open_pool
from api.deps import ApiState
from api.errors import Problem, install_error_handlers
from api.limits import BodySizeLimit
from api.live import Hub
from api.metrics import ApiMetrics, RequestMiddleware
from api.routes import (
    admin,
    crawler,
    dead_letters,
    groups,
    live,
    media,
    messages,
    meta,
    search,
    topics,
    users,
)
from api.routes.analytics import build_router
from api.tokens import TokenOutOfUrl
from api.ui.app import install_console
from eventlog import EventLog
from schemas.duckdb.queries import ANALYTICS_QUERIES, AnalyticsQuery

log = logging.getLogger(__name__)

_DESCRIPTION = """Reads the crawler's projections, streams the live log, and sends admin commands.

Errors are `application/problem+json` (RFC 9457). Authenticate with `Authorization: Bearer <token>`
(a Supabase access token, or the static admin token).

**Live WebSocket** (not expressible in OpenAPI): `GET /live/ws?chat_id=&kind=&after_seq=`, with the
token in `Authorization: Bearer`, or (browsers) as the subprotocol `bearer.<token>` offered next to
`aaltohub.live` (`new WebSocket(url, ["aaltohub.live", "bearer." + token])`; the server answers
`aaltohub.live`); `?access_token=` is still accepted and never logged.
Each text frame is a JSON array of events in log order, each `{seq, subject, kind, chat_id, event}`.
Reconnect with `after_seq=<last seq seen>` to resume with no gap and no duplicate. A client that falls
more than the buffer behind is closed with code 4008 and a reason naming the seq to resume after;
a missing or bad token closes the handshake with 403. `/live/sse` is the same stream as Server-Sent
Events (`id:` = seq, resume with `Last-Event-ID`; overflow ends the stream with an `overflow` event).
"""


def create_app(
    config: ApiConfig, *, queries: Mapping[str, AnalyticsQuery] | None = None
) -> FastAPI:
    """The API app for ``config``; nothing is opened until the lifespan starts."""
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(
            config.database_url.get_secret_value(),
            min_size=config.db_pool_min,
            max_size=config.db_pool_max,
            timeout_s=config.db_timeout_s,
        )
        analytics = SnapshotReader(
            config.duckdb_snapshot_dir,
            memory_limit=config.analytics_memory_limit,
            threads=config.analytics_threads,
        )
        try:
            event_log = await EventLog.connect(
                config.nats_url, spec=config.stream, name="aaltohub-api", ensure=False
            )
            try:
                db = Database(pool, timeout_s=config.db_timeout_s)
                hub = Hub(
                    event_log,
                    history_events=config.live_history_events,
                    max_events=config.live_buffer_events,
                    batch_wait_s=config.live_batch_wait_s,
                )
                await hub.start()
                seq_watch = SeqWatch(db)
                auth = Authenticator(
                    db=db,
                    jwt_secret=config.jwt_secret.get_secret_value() if config.jwt_secret else None,
                    jwks_url=config.jwks_url,
                    audience=config.jwt_audience,
                    admin_token=config.admin_token.get_secret_value()
                    if config.admin_token
                    else None,
                    role_cache_s=config.role_cache_s,
                    issuer=config.jwt_issuer,
                    new_user_role=config.new_user_role,
                )
                app.state.api = ApiState(
                    config=config,
                    db=db,
                    log=event_log,
                    hub=hub,
                    analytics=analytics,
                    auth=auth,
                    metrics=metrics,
                    seq_watch=seq_watch,
                )
                await seq_watch.start()
                try:
                    yield
                finally:
                    auth.close()
                    await seq_watch.stop()
                    await hub.stop()
            finally:
                await event_log.close()
        finally:
            analytics.close()
            await close_pool(pool, timeout_s=config.db_timeout_s)

    # FastAPI's native OpenTelemetry is off: /metrics and the access log already cover requests, and
    # its per-request provider lookup cost ~5 % of a page read.
    app = FastAPI(
        title="AaltoHub crawler API",
        version="0.1.0",
        lifespan=lifespan,
        description=_DESCRIPTION,
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Unless public, the schema and its UI are served by api.routes.meta to readers only.
        openapi_url="/openapi.json" if config.public_docs else None,
        docs_url="/docs" if config.public_docs else None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(RequestMiddleware, metrics=metrics)
    if config.cors_origins:
        # Outside frontends send the bearer token in a header, never cookies: no credentials mode.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "PATCH"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            max_age=600,
        )
    app.add_middleware(TokenOutOfUrl)  # no later code or log line sees a URL token
    # Outermost: an oversized body is refused before any of it is read or parsed.
    app.add_middleware(
        BodySizeLimit, max_bytes=config.max_body_bytes, timeout_s=config.body_timeout_s
    )
    for module in (
        groups,
        messages,
        topics,
        media,
        search,
        users,
        admin,
        crawler,
        dead_letters,
        live,
        meta,
    ):
        app.include_router(module.router)
    app.include_router(build_router(ANALYTICS_QUERIES if queries is None else queries))
    install_console(app, config)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        app.openapi_schema = schema
    return app.openapi_schema
