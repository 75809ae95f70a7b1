"""FastAPI dependencies as ``Annotated`` aliases; resources come from the lifespan state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from api.analytics import SnapshotReader
from api.auth import Authenticator, Principal, require_admin
from api.config import ApiConfig
from api.consistency import SeqWatch
from api.db import Database
from api.live import Hub
from api.metrics import ApiMetrics
from eventlog import EventLog


@dataclass(frozen=True, kw_only=True)
class ApiState:
    """Everything the lifespan opened."""

    config: ApiConfig
    db: Database
    log: EventLog
    hub: Hub
    analytics: SnapshotReader
    auth: Authenticator
    metrics: ApiMetrics
    seq_watch: SeqWatch


def app_state(conn: HTTPConnection) -> ApiState:
    """The app's resources."""
    state: ApiState = conn.app.state.api
    return state


async def get_state(conn: HTTPConnection) -> ApiState:
    """``app_state`` as a dependency (async: FastAPI runs a plain ``def`` dependency in a worker thread)."""
    return app_state(conn)


State = Annotated[ApiState, Depends(get_state)]

_bearer = HTTPBearer(
    auto_error=False, description="Supabase access token (JWT) or the static admin token"
)


async def current_user(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The authenticated caller (401 otherwise)."""
    return await state.auth.authenticate(credentials.credentials if credentials else None)


async def current_admin(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
    """The authenticated caller if an admin (403 otherwise)."""
    return require_admin(principal)


async def live_user(
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access_token: Annotated[
        str | None, Query(description="token for clients that cannot set headers")
    ] = None,
) -> Principal:
    """The caller of a live endpoint: bearer header or ``access_token`` query parameter."""
    return await state.auth.authenticate(credentials.credentials if credentials else access_token)


async def metrics_reader(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Anyone when metrics are public (``public_metrics``), else an admin only."""
    if state.config.public_metrics:
        return
    require_admin(await state.auth.authenticate(credentials.credentials if credentials else None))


async def read_after(
    state: State,
    _caller: Annotated[Principal, Depends(current_user)],  # no waiting before authentication
    min_seq: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**62,
            description="wait (bounded) until the Postgres projection has applied this log seq",
        ),
    ] = None,
) -> None:
    """Wait for read-your-writes consistency when ``min_seq`` is given."""
    if min_seq:
        await state.seq_watch.wait_for(min_seq, timeout_s=state.config.min_seq_wait_s)


User = Annotated[Principal, Depends(current_user)]
Admin = Annotated[Principal, Depends(current_admin)]
LiveUser = Annotated[Principal, Depends(live_user)]
Consistent = Depends(read_after)
MetricsReader = Depends(metrics_reader)
ChatId = Annotated[
    int, Path(ge=-(2**63), le=2**63 - 1, description="marked chat id (channels -100…)")
]
