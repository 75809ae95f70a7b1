"""Health and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import MetricsReader, State, User
from api.errors import ApiError, problem_responses
from api.models import Health
from api.routes.admin import projection_lags, projector_status, stream_last_seq
from eventlog import EventLogError

router = APIRouter(tags=["meta"])


@router.get("/health", response_model=Health, summary="Liveness and dependencies")
async def health(state: State) -> Health:
    """``ok`` when the database and the log answer."""
    try:
        await state.db.fetch_one("SELECT 1 AS ok")
        db_ok = True
    except ApiError:
        db_ok = False
    try:
        await state.log.probe(timeout_s=1.0)
        log_ok = True
    except EventLogError:
        log_ok = False
    live_ok = state.hub.following
    return Health(
        status="ok" if db_ok and log_ok and live_ok else "degraded",
        database=db_ok,
        log=log_ok,
        live=live_ok,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (admins, unless AALTOHUB_API_PUBLIC_METRICS)",
    response_class=Response,
    dependencies=[MetricsReader],
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403),
    },
)
async def metrics(state: State) -> Response:
    """Request latency, live subscribers and projection lag."""
    m = state.metrics
    m.live_subscribers.set(state.hub.subscribers)
    m.live_overflows.set(state.hub.overflows)
    last_seq = await stream_last_seq(state)
    m.stream_last_seq.set(last_seq)
    try:
        for lag in await projection_lags(state, last_seq, await projector_status(state)):
            m.projection_lag.labels(lag.name).set(lag.lag)
    except ApiError:
        pass  # the database is down; the other metrics still render
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, _user: User) -> JSONResponse:
    """The OpenAPI document for signed-in callers (public only with AALTOHUB_API_PUBLIC_DOCS)."""
    return JSONResponse(request.app.openapi())
