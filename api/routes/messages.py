"""Messages of a group: keyset pages and one message with its edit history."""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from fastapi import APIRouter, Path, Query, Response

from api.deps import ChatId, Consistent, State, User
from api.errors import NotFound, problem_responses
from api.models import MessagePage, MessageVersion, MessageWithHistory

router = APIRouter(
    prefix="/groups/{chat_id}/messages",
    tags=["messages"],
    responses=problem_responses(401, 422, 503),
)

MAX_PAGE: Final = 200
_encode: Final = msgspec.json.Encoder().encode
BIGINT: Final = 2**63 - 1
COLUMNS: Final = """chat_id, message_id, account, sender_id, sender_kind, sender_name, sender_username, date,
    edit_date, text, entities, reply_to_message_id, reply_top_id, forum_topic, forward, via_bot_id, via_bot_name,
    post_author, buttons,
    views, forwards, replies, grouped_id, media_type, media, reactions, action_type, action, is_service, pinned,
    is_deleted, deleted_at, edit_count, source, first_seq, last_seq, observed_at"""
# A message with one content has no message_versions rows; these columns are its version.
_VERSION_FIELDS: Final = ("content_hash", "media", "edit_date", "seq", "observed_at")
_ORIGINAL: Final = (
    "content_hash AS original_content_hash, first_media AS original_media, "
    "first_edit_date AS original_edit_date, first_seq AS original_seq, "
    "first_observed_at AS original_observed_at"
)


# One message by its full key (chat_id, id_scope, message_id), docs/decisions/011: ``id_scope`` is
# '' in channels and the observing account elsewhere, so a basic-group or private id names the
# message of the given account (None: the first account that has one).
MESSAGE_KEY_SQL: Final = (
    "chat_id = %s AND message_id = %s AND (%s::text IS NULL OR id_scope IN ('', %s)) "
    "ORDER BY id_scope LIMIT 1"
)

AccountQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Basic groups and private chats number messages per account: the "
        "account whose message this id is (default: the first account that has one).",
    ),
]


def message_key(chat_id: int, message_id: int, account: str | None) -> tuple[object, ...]:
    """The parameters of ``MESSAGE_KEY_SQL``."""
    return (chat_id, message_id, account, account)


def _page_sql(order: str) -> str:
    # Postgres assembles the page's JSON itself (one text value back): no per-row decoding of
    # timestamps/jsonb in Python and no re-encoding. ``limit + 1`` rows tell whether more exist;
    # one pass numbers them, so the extra row is counted but left out of the items and bounds.
    return f"""SELECT count(*) > %(limit)s AS has_more,
        min(id) FILTER (WHERE n <= %(limit)s) AS oldest, max(id) FILTER (WHERE n <= %(limit)s) AS newest,
        coalesce(json_agg(m ORDER BY id DESC) FILTER (WHERE n <= %(limit)s), '[]')::text AS items
    FROM (SELECT m, m.message_id AS id, row_number() OVER (ORDER BY m.message_id {order}) AS n
          FROM (SELECT {COLUMNS} FROM messages
                WHERE chat_id = %(chat)s AND message_id > %(after)s AND message_id < %(before)s
                  AND (%(deleted)s OR NOT is_deleted)
                ORDER BY message_id {order} LIMIT %(limit)s + 1) m) page"""


_NEWEST: Final = _page_sql("DESC")
_OLDEST: Final = _page_sql("ASC")


@router.get("", response_model=MessagePage, dependencies=[Consistent], summary="Page of messages")
async def list_messages(
    chat_id: ChatId,
    state: State,
    _user: User,
    before: Annotated[
        int | None, Query(ge=-BIGINT, le=BIGINT, description="only ids below this (older)")
    ] = None,
    after: Annotated[
        int | None, Query(ge=-BIGINT, le=BIGINT, description="only ids above this (newer)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    include_deleted: Annotated[bool, Query(description="include tombstoned messages")] = False,
) -> Response:
    """Messages newest first. With only ``after`` the page holds the ones right after it (still newest first)."""
    params = {
        "chat": chat_id,
        # Ids from before a migration, kept under the supergroup, are negative (decision 031).
        "after": after if after is not None else -BIGINT,
        "before": before if before is not None else BIGINT,
        "deleted": include_deleted,
        "limit": limit,
    }
    forward = after is not None and before is None
    row = await state.db.fetch_one(_OLDEST if forward else _NEWEST, params)
    assert row is not None
    # The hot path: the items are exactly ``Message`` fields as JSON, embedded without a pydantic
    # round trip (the response model still documents the shape; the schemathesis test checks it).
    page = {
        "items": msgspec.Raw(row["items"].encode()),
        "has_more": row["has_more"],
        "next_before": row["oldest"] if row["oldest"] is not None else before,
        "next_after": row["newest"] if row["newest"] is not None else after,
    }
    return Response(_encode(page), media_type="application/json")


@router.get(
    "/{message_id}",
    response_model=MessageWithHistory,
    dependencies=[Consistent],
    summary="One message with its edit history",
    responses=problem_responses(404),
)
async def get_message(
    chat_id: ChatId,
    message_id: Annotated[int, Path(ge=-BIGINT, le=BIGINT)],
    state: State,
    _user: User,
    account: AccountQuery = None,
) -> MessageWithHistory:
    """A message (deleted ones too, flagged) and every distinct version of it, oldest first."""
    row = await state.db.fetch_one(
        f"SELECT {COLUMNS}, id_scope, {_ORIGINAL} FROM messages WHERE {MESSAGE_KEY_SQL}",
        message_key(chat_id, message_id, account),
    )
    if row is None:
        raise NotFound("no such message")
    fields = dict(row)
    scope = fields.pop("id_scope")
    original = {name: fields.pop(f"original_{name}") for name in _VERSION_FIELDS}
    versions = await state.db.fetch_all(
        "SELECT content_hash, text, media, edit_date, seq, observed_at FROM message_versions "
        "WHERE chat_id = %s AND id_scope = %s AND message_id = %s "
        "ORDER BY seq, edit_date NULLS FIRST",
        (chat_id, scope, message_id),
    )
    if not versions and original["content_hash"] is not None:
        # One content so far: its version is the row's text with its first sighting's columns
        # (docs/decisions/026-versions-only-of-edited-messages.md).
        versions = [{**original, "text": fields["text"]}]
    return MessageWithHistory(**fields, versions=[MessageVersion(**v) for v in versions])
