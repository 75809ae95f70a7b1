"""Forum topics of a group, read from its messages: a topic is the service message that created
it (its id is the topic's id), named by that message or the newest rename; its messages are the
ones Telegram threads under it (docs/decisions/033-forum-topics-from-messages.md)."""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from fastapi import APIRouter, Path, Query, Response

from api.deps import ChatId, Consistent, State, User
from api.errors import problem_responses
from api.models import MessagePage, TopicList
from api.routes.messages import BIGINT, COLUMNS, MAX_PAGE

router = APIRouter(
    prefix="/groups/{chat_id}/topics",
    tags=["topics"],
    responses=problem_responses(401, 422, 503),
)

_encode: Final = msgspec.json.Encoder().encode
# A message of topic T: T's own service message, a message posted in T (it replies to T), or a
# reply inside T (its thread root is T). Only supergroups have topics (id_scope '').
_IN_TOPIC: Final = (
    "(message_id = %(topic)s OR reply_top_id = %(topic)s "
    "OR (reply_top_id IS NULL AND reply_to_message_id = %(topic)s AND forum_topic))"
)
_TOPICS_SQL: Final = """
WITH created AS (
  SELECT message_id AS topic_id, action->>'title' AS title, date, sender_id
  FROM messages WHERE chat_id = %(chat)s AND id_scope = '' AND action_type = 'topic_create'
), renamed AS (
  SELECT DISTINCT ON (topic_id) topic_id, title FROM (
    SELECT coalesce(reply_top_id, reply_to_message_id) AS topic_id, action->>'title' AS title,
           date, message_id
    FROM messages WHERE chat_id = %(chat)s AND id_scope = '' AND action_type = 'topic_edit'
      AND action->>'title' IS NOT NULL) e
  WHERE topic_id IS NOT NULL ORDER BY topic_id, date DESC, message_id DESC
), counted AS (
  SELECT t.topic_id, count(m.message_id) AS messages, max(m.date) AS last_message_at
  FROM created t JOIN messages m ON m.chat_id = %(chat)s AND m.id_scope = '' AND NOT m.is_deleted
    AND (m.message_id = t.topic_id OR m.reply_top_id = t.topic_id
         OR (m.reply_top_id IS NULL AND m.reply_to_message_id = t.topic_id AND m.forum_topic))
  GROUP BY t.topic_id
)
SELECT c.topic_id, coalesce(r.title, c.title) AS title, c.date AS created_at,
       c.sender_id AS created_by, coalesce(n.messages, 0) AS message_count, n.last_message_at
FROM created c LEFT JOIN renamed r USING (topic_id) LEFT JOIN counted n USING (topic_id)
ORDER BY c.topic_id"""
_PAGE_SQL: Final = f"""SELECT count(*) > %(limit)s AS has_more,
    min(id) FILTER (WHERE n <= %(limit)s) AS oldest, max(id) FILTER (WHERE n <= %(limit)s) AS newest,
    coalesce(json_agg(m ORDER BY id DESC) FILTER (WHERE n <= %(limit)s), '[]')::text AS items
FROM (SELECT m, m.message_id AS id, row_number() OVER (ORDER BY m.message_id DESC) AS n
      FROM (SELECT {COLUMNS} FROM messages
            WHERE chat_id = %(chat)s AND id_scope = '' AND message_id < %(before)s
              AND (%(deleted)s OR NOT is_deleted) AND {_IN_TOPIC}
            ORDER BY message_id DESC LIMIT %(limit)s + 1) m) page"""


@router.get("", response_model=TopicList, dependencies=[Consistent], summary="Forum topics")
async def list_topics(chat_id: ChatId, state: State, _user: User) -> TopicList:
    """The group's forum topics with their current names, oldest first."""
    rows = await state.db.fetch_all(_TOPICS_SQL, {"chat": chat_id})
    return TopicList.model_validate({"items": rows})


@router.get(
    "/{topic_id}/messages",
    response_model=MessagePage,
    dependencies=[Consistent],
    summary="Page of a topic's messages",
)
async def list_topic_messages(
    chat_id: ChatId,
    topic_id: Annotated[int, Path(ge=1, le=BIGINT)],
    state: State,
    _user: User,
    before: Annotated[
        int | None, Query(ge=0, le=BIGINT, description="only ids below this (older)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    include_deleted: Annotated[bool, Query(description="include tombstoned messages")] = False,
) -> Response:
    """The topic's messages newest first (its creation message included), a keyset page."""
    params = {
        "chat": chat_id,
        "topic": topic_id,
        "before": before if before is not None else BIGINT,
        "deleted": include_deleted,
        "limit": limit,
    }
    row = await state.db.fetch_one(_PAGE_SQL, params)
    assert row is not None
    page = {
        "items": msgspec.Raw(row["items"].encode()),
        "has_more": row["has_more"],
        "next_before": row["oldest"] if row["oldest"] is not None else before,
        "next_after": row["newest"],
    }
    return Response(_encode(page), media_type="application/json")
