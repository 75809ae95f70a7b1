"""Crawler control: trigger a crawl of a group, restart the crawler (commands to ingest over NATS)."""

from __future__ import annotations

from fastapi import APIRouter

from api.commands import ask_ingest
from api.deps import Admin, ChatId, State
from api.errors import NotFound, problem_responses
from api.models import CommandAck, CrawlRequest
from schemas.commands import RestartCrawler, TriggerCrawl

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
    reply = await ask_ingest(
        state.log,
        TriggerCrawl(chat_id=chat_id, mode=body.mode, requested_by=admin.name),
        account=row["account"],
        timeout_s=state.config.command_timeout_s,
    )
    return CommandAck.of(reply)


@router.post("/crawler/restart", response_model=CommandAck, summary="Restart the crawler")
async def restart(state: State, admin: Admin) -> CommandAck:
    """Send ``RestartCrawler`` to every account of every ingest process and return the answer."""
    reply = await ask_ingest(
        state.log,
        RestartCrawler(requested_by=admin.name),
        account=None,
        timeout_s=state.config.command_timeout_s,
    )
    return CommandAck.of(reply)
