"""Stored media of a message, served from the local media directory to authenticated callers."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from api.deps import ApiState, ChatId, State, User
from api.errors import NotFound, problem_responses
from api.routes.messages import MESSAGE_KEY_SQL, AccountQuery, message_key

router = APIRouter(tags=["messages"], responses=problem_responses(401, 404, 422, 503))


async def media_file(
    state: ApiState, chat_id: int, message_id: int, account: str | None
) -> FileResponse:
    """The stored file of a message (of ``account`` where ids are per account), or ``NotFound``
    (no media stored, or kept elsewhere)."""
    root = state.config.media_dir
    row = await state.db.fetch_one(
        f"SELECT media_path FROM messages WHERE {MESSAGE_KEY_SQL}",
        message_key(chat_id, message_id, account),
    )
    if root is None or row is None or not row["media_path"]:
        raise NotFound("no stored media for this message")
    base = root.resolve()
    path = (base / row["media_path"]).resolve()
    if not path.is_relative_to(base) or not path.is_file():  # a key never leaves the media dir
        raise NotFound("no stored media for this message")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
        content_disposition_type="inline" if media_type.startswith("image/") else "attachment",
    )


@router.get(
    "/groups/{chat_id}/messages/{message_id}/media",
    summary="The message's stored media file",
    response_class=FileResponse,
)
async def get_media(
    chat_id: ChatId,
    message_id: Annotated[int, PathParam(ge=0, le=2**63 - 1)],
    state: State,
    _user: User,
    account: AccountQuery = None,
) -> FileResponse:
    """The file ingest stored for the message (content-addressed under the media directory)."""
    return await media_file(state, chat_id, message_id, account)
