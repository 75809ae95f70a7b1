"""Stored media of a message, served to authenticated callers from the Supabase Storage bucket
when one is configured, else from the local media directory."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from api.deps import ApiState, ChatId, State, User
from api.errors import NotFound, problem_responses
from api.media_bucket import BucketMedia
from api.routes.messages import MESSAGE_KEY_SQL, AccountQuery, message_key

router = APIRouter(tags=["messages"], responses=problem_responses(401, 404, 422, 503))


_NO_MEDIA = "no stored media for this message"
_CACHE = "private, max-age=86400"


async def media_file(
    state: ApiState, chat_id: int, message_id: int, account: str | None
) -> Response:
    """The stored file of a message (of ``account`` where ids are per account), or ``NotFound``
    (no media stored, or kept where this API does not read)."""
    row = await state.db.fetch_one(
        f"SELECT media_path FROM messages WHERE {MESSAGE_KEY_SQL}",
        message_key(chat_id, message_id, account),
    )
    if row is None or not row["media_path"]:
        raise NotFound(_NO_MEDIA)
    bucket = media_bucket(state)
    if bucket is not None:
        return await _from_bucket(bucket, row["media_path"])
    root = state.config.media_dir
    if root is None:
        raise NotFound(_NO_MEDIA)
    base = root.resolve()
    path = (base / row["media_path"]).resolve()
    if not path.is_relative_to(base) or not path.is_file():  # a key never leaves the media dir
        raise NotFound(_NO_MEDIA)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": _CACHE, "X-Content-Type-Options": "nosniff"},
        content_disposition_type=_disposition(media_type),
    )


def media_bucket(state: ApiState) -> BucketMedia | None:
    """The Storage bucket media are read from, when configured."""
    config = state.config
    if not (config.media_bucket and config.supabase_url and config.supabase_service_key):
        return None
    return BucketMedia(
        url=config.supabase_url,
        service_key=config.supabase_service_key.get_secret_value(),
        bucket=config.media_bucket,
        timeout_s=max(config.command_timeout_s, 30.0),
    )


async def _from_bucket(bucket: BucketMedia, media_path: str) -> Response:
    key = bucket.key_of(media_path)
    data = None if key is None else await bucket.read(key)
    if key is None or data is None:
        raise NotFound(_NO_MEDIA)
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    name = key.rsplit("/", 1)[-1]
    return Response(
        data,
        media_type=media_type,
        headers={
            "Cache-Control": _CACHE,
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'{_disposition(media_type)}; filename="{name}"',
        },
    )


def _disposition(media_type: str) -> str:
    return "inline" if media_type.startswith("image/") else "attachment"


@router.get(
    "/groups/{chat_id}/messages/{message_id}/media",
    summary="The message's stored media file",
    response_class=Response,
)
async def get_media(
    chat_id: ChatId,
    message_id: Annotated[int, PathParam(ge=0, le=2**63 - 1)],
    state: State,
    _user: User,
    account: AccountQuery = None,
) -> Response:
    """The file ingest stored for the message (content-addressed, in the bucket or media dir)."""
    return await media_file(state, chat_id, message_id, account)
