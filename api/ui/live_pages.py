"""Console pages fed from the browser: the live feed (cookie-authenticated WebSocket) and analytics charts."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import JSONResponse, Response

from api.deps import State, app_state
from api.errors import ApiError, NotFound
from api.routes.live import AUTH_CLOSE_CODE, KindsQuery, live_filter, stream_to_websocket
from api.ui.message_pages import optional_id
from api.ui.overview import pages
from api.ui.session import SESSION_COOKIE, Session
from schemas.duckdb.queries import ANALYTICS_QUERIES

router = APIRouter(prefix="/ui", include_in_schema=False)

SEQ_MAX: Final = 2**63 - 1
# The charts the analytics page draws, in order: (query name, heading, chart kind).
CHARTS: Final = (
    ("messages_per_day", "Messages per day", "bar"),
    ("active_senders_per_day", "Active senders per day", "line"),
    ("hour_of_week_heatmap", "Messages by hour of the week (UTC)", "heatmap"),
    ("edit_delete_rates", "Edit and delete rates per group", "rates"),
    ("media_type_mix", "Media mix", "doughnut"),
    ("ingest_lag", "Ingest lag by source (seconds)", "lag"),
)


@router.get("/live")
async def live_page(
    request: Request,
    session: Session,
    chat: Annotated[str, Query(alias="chat_id", max_length=24)] = "",
    kind: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The live feed: new messages, edits in place, deletes struck through; pause and resume."""
    chat_id = optional_id(chat)
    return pages(request).render(
        request, "live.html", session, {"chat_id": chat_id, "kind": kind or ""}
    )


@router.websocket("/live/ws")
async def live_socket(
    websocket: WebSocket,
    chat_id: Annotated[int | None, Query(ge=-(2**63), le=SEQ_MAX)] = None,
    kind: KindsQuery = None,
    after_seq: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None,
) -> None:
    """``/live/ws`` for the console: the session cookie authenticates, and only our own pages may
    open it (a WebSocket handshake carries cookies cross-site, so the Origin must be this host)."""
    state = app_state(websocket)
    origin = websocket.headers.get("origin", "")
    host = websocket.headers.get("host", "")
    if not host or origin.split("://", 1)[-1] != host:
        await websocket.close(code=AUTH_CLOSE_CODE, reason="cross-origin")
        return
    try:
        principal = await state.auth.authenticate(websocket.cookies.get(SESSION_COOKIE))
    except ApiError:
        await websocket.close(code=AUTH_CLOSE_CODE, reason="unauthorized")
        return
    await websocket.accept()
    await stream_to_websocket(
        websocket,
        state,
        live_filter(chat_id, kind),
        after_seq,
        expires_at=principal.expires_at,  # the session ends with its token
    )


@router.get("/analytics")
async def analytics_page(request: Request, session: Session) -> Response:
    """Charts of the named analytics queries, drawn in the browser."""
    charts = [
        {
            "name": name,
            "title": title,
            "chart": chart,
            "description": ANALYTICS_QUERIES[name].description,
        }
        for name, title, chart in CHARTS
        if name in ANALYTICS_QUERIES
    ]
    return pages(request).render(request, "analytics.html", session, {"charts": charts})


@router.get("/data/analytics/{name}")
async def analytics_data(name: str, state: State, session: Session) -> Response:
    """One analytics query's result as JSON for the charts (the session cookie authenticates)."""
    del session
    query = ANALYTICS_QUERIES.get(name)
    if query is None:
        raise NotFound("no such analytics query")
    result = await state.analytics.query(
        query.sql,
        {"chat_id": None, "since": None, "until": None},
        row_cap=state.config.sql_row_cap,
        timeout_s=state.config.sql_timeout_s,
    )
    return JSONResponse(
        {
            "name": name,
            "columns": result.columns,
            "rows": result.rows,
            "truncated": result.truncated,
        }
    )
