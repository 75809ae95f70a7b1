"""Messages of a group: keyset pages and one message with its edit history."""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from fastapi import APIRouter, Path, Query, Response

from api.deps import ChatId, Consistent, State, User
from api.errors import NotFound, problem_responses
from api.models import MessagePage, MessageVersion, MessageWithHistory

router = APIRouter(prefix="/groups/{chat_id}/messages", tags=["messages"],
                   responses=problem_responses(401, 422, 503))

MAX_PAGE: Final = 200
_encode: Final = msgspec.json.Encoder().encode
BIGINT: Final = 2**63 - 1
COLUMNS: Final = """chat_id, message_id, account, sender_id, sender_kind, sender_name, sender_username, date,
    edit_date, text, entities, reply_to_message_id, reply_top_id, forum_topic, forward, via_bot_id, post_author,
    views, forwards, replies, grouped_id, media_type, media, reactions, action_type, action, is_service, pinned,
    is_deleted, deleted_at, edit_count, source, first_seq, last_seq, observed_at"""

_NEWEST: Final = f"""SELECT {COLUMNS} FROM messages
    WHERE chat_id = %(chat)s AND message_id > %(after)s AND message_id < %(before)s
      AND (%(deleted)s OR NOT is_deleted)
    ORDER BY message_id DESC LIMIT %(limit)s"""
_OLDEST: Final = f"""SELECT {COLUMNS} FROM messages
    WHERE chat_id = %(chat)s AND message_id > %(after)s AND message_id < %(before)s
      AND (%(deleted)s OR NOT is_deleted)
    ORDER BY message_id ASC LIMIT %(limit)s"""


@router.get("", response_model=MessagePage, dependencies=[Consistent], summary="Page of messages")
async def list_messages(
    chat_id: ChatId,
    state: State,
    _user: User,
    before: Annotated[int | None, Query(ge=0, le=BIGINT, description="only ids below this (older)")] = None,
    after: Annotated[int | None, Query(ge=0, le=BIGINT, description="only ids above this (newer)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    include_deleted: Annotated[bool, Query(description="include tombstoned messages")] = False,
) -> Response:
    """Messages newest first. With only ``after`` the page holds the ones right after it (still newest first)."""
    params = {"chat": chat_id, "after": after if after is not None else -1,
              "before": before if before is not None else BIGINT, "deleted": include_deleted, "limit": limit + 1}
    forward = after is not None and before is None
    rows = await state.db.fetch_all(_OLDEST if forward else _NEWEST, params)
    has_more = len(rows) > limit
    rows = rows[:limit]
    if forward:
        rows.reverse()
    # The hot path: rows are exactly ``Message`` fields, so encode them directly instead of building
    # and re-validating 200 pydantic models (the response model still documents the shape).
    page = {"items": rows, "has_more": has_more,
            "next_before": rows[-1]["message_id"] if rows else before,
            "next_after": rows[0]["message_id"] if rows else after}
    return Response(_encode(page), media_type="application/json")


@router.get("/{message_id}", response_model=MessageWithHistory, dependencies=[Consistent],
            summary="One message with its edit history", responses=problem_responses(404))
async def get_message(
    chat_id: ChatId, message_id: Annotated[int, Path(ge=0, le=BIGINT)], state: State, _user: User
) -> MessageWithHistory:
    """A message (deleted ones too, flagged) and every distinct version of it, oldest first."""
    row = await state.db.fetch_one(f"SELECT {COLUMNS} FROM messages WHERE chat_id = %s AND message_id = %s",
                                   (chat_id, message_id))
    if row is None:
        raise NotFound("no such message")
    versions = await state.db.fetch_all(
        "SELECT content_hash, text, media, edit_date, seq, observed_at FROM message_versions "
        "WHERE chat_id = %s AND message_id = %s ORDER BY seq, edit_date NULLS FIRST", (chat_id, message_id))
    return MessageWithHistory(**row, versions=[MessageVersion(**v) for v in versions])
