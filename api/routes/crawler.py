"""Crawler control: trigger a crawl of a group, restart the crawler (commands to ingest over NATS)."""

from __future__ import annotations

from fastapi import APIRouter

from api.commands import command
from api.deps import Admin, ChatId, State
from api.errors import NotFound, problem_responses
from api.models import CommandAck, CrawlRequest
from schemas.commands import RestartCrawler, TriggerCrawl
from schemas.subjects import command_subject

router = APIRouter(prefix="/admin", tags=["admin"], responses=problem_responses(401, 403, 422, 503))


@router.post(
    "/groups/{chat_id}/crawl",
    response_model=CommandAck,
    summary="Trigger a backfill or gap-fill",
    responses=problem_responses(400, 404),
)
async def trigger_crawl(
    chat_id: ChatId, body: CrawlRequest, state: State, admin: Admin
) -> CommandAck:
    """Send ``TriggerCrawl`` to the account that watches the group and return its acknowledgement."""
    row = await state.db.fetch_one(
        "SELECT account FROM telegram_groups WHERE chat_id = %s", (chat_id,)
    )
    if row is None:
        raise NotFound("no such group")
    reply = await command(
        state.log,
        command_subject(row["account"], "crawl"),
        TriggerCrawl(chat_id=chat_id, mode=body.mode, requested_by=admin.name),
        timeout_s=state.config.command_timeout_s,
        service="ingest",
    )
    return CommandAck(ok=reply.ok, message=reply.message, data=reply.data)


@router.post("/crawler/restart", response_model=CommandAck, summary="Restart the crawler")
async def restart(state: State, admin: Admin) -> CommandAck:
    """Send ``RestartCrawler`` to every ingest process and return the acknowledgement."""
    reply = await command(
        state.log,
        command_subject(None, "restart"),
        RestartCrawler(requested_by=admin.name),
        timeout_s=state.config.command_timeout_s,
        service="ingest",
    )
    return CommandAck(ok=reply.ok, message=reply.message, data=reply.data)
