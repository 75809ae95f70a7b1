"""Live events over WebSocket and Server-Sent Events, filterable and resumable by seq."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import APIRouter, Header, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from api.deps import ApiState, LiveUser, State, app_state
from api.errors import ApiError, problem_responses
from api.live import LiveFilter, Subscriber, SubscriberOverflow, frame
from api.tokens import SUBPROTOCOL

router = APIRouter(prefix="/live", tags=["live"])

OVERFLOW_CLOSE_CODE: Final = 4008  # application-defined (4000-4999, RFC 6455 §7.4.2)
AUTH_CLOSE_CODE: Final = 4401
# The token expired while connected: get a fresh one and reconnect with after_seq (no gap).
TOKEN_EXPIRED_CLOSE_CODE: Final = AUTH_CLOSE_CODE
TOKEN_EXPIRED_REASON: Final = "token expired; reconnect with a fresh token"
IDLE_S: Final = 15.0
SEQ_MAX: Final = 2**63 - 1

KindsQuery = Annotated[
    list[str] | None,
    Query(
        max_length=20,
        description="event kinds, e.g. message.posted, or a family: message, chat, ingest",
    ),
]


def live_filter(chat_id: int | None, kind: list[str] | None) -> LiveFilter:
    """The filter of a live request's ``chat_id`` and ``kind`` parameters."""
    return LiveFilter(chat_id=chat_id, kinds=frozenset(k for k in (kind or []) if k))


@router.get(
    "/sse",
    summary="Server-Sent Events stream of the log",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless `text/event-stream`; `id:` is the log seq",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 422),
    },
)
async def sse(
    state: State,
    _user: LiveUser,
    chat_id: Annotated[int | None, Query(ge=-(2**63), le=SEQ_MAX)] = None,
    kind: KindsQuery = None,
    after_seq: Annotated[
        int | None, Query(ge=0, le=SEQ_MAX, description="resume after this seq")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
) -> StreamingResponse:
    """Each event as ``id: <seq>``, ``event: <kind>``, ``data: <json>``; resumes after ``Last-Event-ID``."""
    resume = after_seq
    if last_event_id and last_event_id.strip().isdigit():
        resume = min(int(last_event_id.strip()), SEQ_MAX)
    state.metrics.live_connections.labels("sse").inc()
    return StreamingResponse(
        _sse_stream(state, live_filter(chat_id, kind), resume, expires_at=_user.expires_at),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse_stream(
    state: ApiState, flt: LiveFilter, after_seq: int | None, *, expires_at: float | None
) -> AsyncIterator[str]:
    with state.hub.subscribe(flt, after_seq=after_seq) as sub:
        yield f"retry: 2000\n: live from seq {sub.after_seq}\n\n"
        try:
            async with asyncio.timeout(_seconds_until(expires_at)):
                async for batch in sub.batches(idle_s=IDLE_S):
                    if not batch:
                        yield ": keep-alive\n\n"
                        continue
                    yield "".join(c.sse for c in batch)
        except TimeoutError:
            body = json.dumps({"reason": TOKEN_EXPIRED_REASON, "last_seq": sub.last_seq})
            yield f"event: token-expired\ndata: {body}\n\n"
        except SubscriberOverflow as e:
            yield f"event: overflow\ndata: {json.dumps({'reason': str(e), 'last_seq': sub.last_seq})}\n\n"


@router.websocket("/ws")
async def websocket_live(
    websocket: WebSocket,
    chat_id: Annotated[int | None, Query(ge=-(2**63), le=SEQ_MAX)] = None,
    kind: KindsQuery = None,
    after_seq: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None,
    access_token: str | None = None,  # documented; api.tokens moved it into Authorization
) -> None:
    """Frames are JSON arrays of events (seq order); overflow closes with 4008 and the seq to resume after."""
    state = app_state(websocket)
    header = websocket.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else None
    try:
        principal = await state.auth.authenticate(token)
    except ApiError:
        await websocket.close(code=AUTH_CLOSE_CODE, reason="unauthorized")
        return
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    await stream_to_websocket(
        websocket,
        state,
        live_filter(chat_id, kind),
        after_seq,
        expires_at=principal.expires_at,
    )


async def stream_to_websocket(
    websocket: WebSocket,
    state: ApiState,
    flt: LiveFilter,
    after_seq: int | None,
    *,
    expires_at: float | None,
) -> None:
    """Send ``flt``'s events after ``after_seq`` on an accepted socket until either side stops, or
    close it with ``TOKEN_EXPIRED_CLOSE_CODE`` when the credential expires (``expires_at``)."""
    state.metrics.live_connections.labels("websocket").inc()
    with state.hub.subscribe(flt, after_seq=after_seq) as sub:
        sender = asyncio.create_task(_send_batches(websocket, sub), name="live-ws-send")
        receiver = asyncio.create_task(_wait_disconnect(websocket), name="live-ws-recv")
        try:
            done, _ = await asyncio.wait(
                {sender, receiver},
                timeout=_seconds_until(expires_at),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                sender.cancel()
                with contextlib.suppress(RuntimeError, OSError):
                    await websocket.close(
                        code=TOKEN_EXPIRED_CLOSE_CODE, reason=TOKEN_EXPIRED_REASON
                    )
        finally:
            for task in (sender, receiver):
                task.cancel()
            for task in (sender, receiver):
                with contextlib.suppress(
                    asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError
                ):
                    await task


async def _send_batches(websocket: WebSocket, sub: Subscriber) -> None:
    try:
        async for batch in sub.batches(idle_s=None):
            await websocket.send_text(frame(batch))
    except SubscriberOverflow as e:
        await websocket.close(code=OVERFLOW_CLOSE_CODE, reason=str(e)[:120])


async def _wait_disconnect(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _seconds_until(expires_at: float | None) -> float | None:
    """Seconds left of a credential (None: it never expires)."""
    return None if expires_at is None else max(0.0, expires_at - time.time())
