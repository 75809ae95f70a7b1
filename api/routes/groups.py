"""Groups (watched chats) with their crawler status."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter

from api.deps import ChatId, Consistent, State, User
from api.errors import NotFound, problem_responses
from api.models import CrawlerState, Group, GroupList

router = APIRouter(prefix="/groups", tags=["groups"], responses=problem_responses(401, 422, 503))

GROUP_SQL: Final = """
SELECT g.chat_id, g.kind, g.title, g.username, g.member_count, g.forum, g.migrated_to_chat_id,
       g.photo_id, g.account, g.is_active,
       g.discovered_at, g.left_at, g.last_activity_at, g.message_count, g.last_seq,
       c.status AS c_status, c.account AS c_account, c.backfill_fetched AS c_backfill_fetched,
       c.backfill_total AS c_backfill_total, c.backfill_completed_at AS c_backfill_completed_at,
       c.last_message_at AS c_last_message_at, c.last_gapfill_at AS c_last_gapfill_at,
       c.gapfill_new AS c_gapfill_new, c.last_error AS c_last_error, c.last_error_at AS c_last_error_at,
       c.last_flood_wait_s AS c_last_flood_wait_s, c.last_flood_wait_at AS c_last_flood_wait_at,
       c.updated_at AS c_updated_at
FROM telegram_groups g LEFT JOIN crawler_status c ON c.chat_id = g.chat_id
"""


def crawler_state(row: dict[str, Any]) -> CrawlerState | None:
    """The ``c_``-prefixed crawler columns of a joined row, or None."""
    if row.get("c_status") is None:
        return None
    fields = {k[2:]: v for k, v in row.items() if k.startswith("c_")}
    total, fetched = fields.get("backfill_total"), fields.get("backfill_fetched") or 0
    progress = None
    if fields.get("backfill_completed_at") is not None:
        progress = 1.0
    elif total:
        progress = min(1.0, fetched / total)
    return CrawlerState(**fields, backfill_progress=progress)


def to_group(row: dict[str, Any]) -> Group:
    """A joined row as a ``Group``."""
    plain = {k: v for k, v in row.items() if not k.startswith("c_")}
    return Group(**plain, crawler=crawler_state(row))


@router.get("", response_model=GroupList, dependencies=[Consistent], summary="List groups")
async def list_groups(state: State, _user: User) -> GroupList:
    """All watched groups with their crawler status, by title."""
    rows = await state.db.fetch_all(GROUP_SQL + " ORDER BY g.title NULLS LAST, g.chat_id")
    return GroupList(items=[to_group(r) for r in rows])


@router.get(
    "/{chat_id}",
    response_model=Group,
    dependencies=[Consistent],
    summary="One group",
    responses=problem_responses(404),
)
async def get_group(chat_id: ChatId, state: State, _user: User) -> Group:
    """One group with its crawler status."""
    row = await state.db.fetch_one(GROUP_SQL + " WHERE g.chat_id = %s", (chat_id,))
    if row is None:
        raise NotFound("no such group")
    return to_group(row)
