"""Admin overview: system status with projection lag, per-group crawl status, recent errors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.commands import ask_ingest, ask_projector
from api.deps import Admin, ApiState, State
from api.errors import ServiceUnavailable, problem_responses
from api.models import (
    ErrorEntry,
    ErrorList,
    GroupStatus,
    GroupStatusList,
    ProjectionLag,
    SystemStatus,
)
from api.routes.groups import GROUP_SQL, crawler_state
from api.routes.search import search_index_state
from api.status_models import CrawlerRuntime
from eventlog import EventLogError
from schemas.commands import ReportStatus
from schemas.status import ProjectorStatus

router = APIRouter(prefix="/admin", tags=["admin"], responses=problem_responses(401, 403, 422, 503))


async def stream_last_seq(state: ApiState) -> int:
    """The log's last seq (the live follower's position if the log does not answer)."""
    try:
        return (await state.log.info()).last_seq
    except EventLogError:
        return state.hub.position


async def projector_status(state: ApiState) -> ProjectorStatus | None:
    """What the projector runs, or None when it does not answer."""
    try:
        reply = await ask_projector(
            state.log, ReportStatus(), timeout_s=min(2.0, state.config.command_timeout_s)
        )
    except ServiceUnavailable:
        return None
    return reply.projector


async def projection_lags(
    state: ApiState, last_seq: int, running: ProjectorStatus | None
) -> list[ProjectionLag]:
    """Each projection's checkpoint and lag behind ``last_seq``; when the projector answers, only
    the projections it runs (a disabled one keeps an old checkpoint whose lag means nothing)."""
    rows = await state.db.fetch_all(
        "SELECT name, seq, events_applied, updated_at FROM projection_checkpoints ORDER BY name"
    )
    live = {p.name: p for p in running.projections} if running is not None else {}
    return [
        ProjectionLag(
            name=r["name"],
            seq=r["seq"],
            lag=max(0, last_seq - r["seq"]),
            events_applied=r["events_applied"],
            updated_at=r["updated_at"],
            events_per_s=live[r["name"]].events_per_s if r["name"] in live else None,
            last_error=live[r["name"]].last_error if r["name"] in live else None,
        )
        for r in rows
        if running is None or r["name"] in live
    ]


async def crawler_runtime(state: ApiState) -> CrawlerRuntime:
    """Ask ingest for its status; ``running=False`` when it does not answer."""
    try:
        reply = await ask_ingest(
            state.log,
            ReportStatus(),
            account=None,
            timeout_s=min(2.0, state.config.command_timeout_s),
        )
    except ServiceUnavailable as e:
        return CrawlerRuntime.absent(e.detail or "ingest did not answer")
    if reply.crawler is None:
        return CrawlerRuntime.absent(reply.message or "ingest sent no status")
    return CrawlerRuntime.of(reply.crawler, message=reply.message or None)


@router.get("/status", response_model=SystemStatus, summary="Crawler and projection status")
async def status(state: State, _admin: Admin) -> SystemStatus:
    """Crawler runtime (from ingest), group and message counts, log position and lag of each projection."""
    last_seq = await stream_last_seq(state)
    projector = await projector_status(state)
    counts = await state.db.fetch_one(
        "SELECT count(*) AS groups, count(*) FILTER (WHERE is_active) AS active, "
        "coalesce(sum(message_count), 0)::bigint AS messages FROM telegram_groups"
    )
    flood = await state.db.fetch_one(
        "SELECT last_flood_wait_s, last_flood_wait_at FROM crawler_status WHERE last_flood_wait_at IS NOT NULL "
        "ORDER BY last_flood_wait_at DESC LIMIT 1"
    )
    assert counts is not None
    return SystemStatus(
        crawler=await crawler_runtime(state),
        groups=counts["groups"],
        active_groups=counts["active"],
        messages=counts["messages"],
        stream_last_seq=last_seq,
        projector_running=projector is not None,
        projections=await projection_lags(state, last_seq, projector),
        last_flood_wait_s=flood["last_flood_wait_s"] if flood else None,
        last_flood_wait_at=flood["last_flood_wait_at"] if flood else None,
        live_subscribers=state.hub.subscribers,
        search_index=await search_index_state(state),
    )


@router.get("/groups", response_model=GroupStatusList, summary="Per-group crawl status")
async def group_status(state: State, _admin: Admin) -> GroupStatusList:
    """Every group's crawler status and backfill progress."""
    rows = await state.db.fetch_all(GROUP_SQL + " ORDER BY g.title NULLS LAST, g.chat_id")
    return GroupStatusList(
        items=[
            GroupStatus(
                chat_id=r["chat_id"],
                title=r["title"],
                account=r["account"],
                is_active=r["is_active"],
                message_count=r["message_count"],
                crawler=crawler_state(r),
            )
            for r in rows
        ]
    )


@router.get("/errors", response_model=ErrorList, summary="Recent errors")
async def recent_errors(
    state: State, _admin: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> ErrorList:
    """Latest crawler errors per group and projection failures, newest first."""
    rows = await state.db.fetch_all(
        "SELECT at, source, kind, chat_id, error FROM ("
        " SELECT last_error_at AS at, 'crawler' AS source, last_error_kind AS kind, chat_id,"
        "  last_error AS error FROM crawler_status"
        "  WHERE last_error IS NOT NULL AND last_error_at IS NOT NULL"
        " UNION ALL"
        " SELECT created_at, 'projection', projection, chat_id, projection || ': ' || error"
        "  FROM failed_messages"
        ") e ORDER BY at DESC LIMIT %s",
        (limit,),
    )
    return ErrorList(items=[ErrorEntry(**r) for r in rows])
