"""Dead letters: list and filter, retry one or all (a command to the projector, never a table write)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.commands import ask_projector
from api.deps import Admin, State
from api.errors import NotFound, problem_responses
from api.models import CommandAck, DeadLetter, DeadLetterList
from schemas.commands import RetryDeadLetters

router = APIRouter(
    prefix="/admin/dead-letters", tags=["admin"], responses=problem_responses(401, 403, 422, 503)
)

DeadLetterId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("", response_model=DeadLetterList, summary="List dead letters")
async def list_dead_letters(
    state: State,
    _admin: Admin,
    resolved: Annotated[
        bool | None, Query(description="only resolved (true) or unresolved (false)")
    ] = None,
    projection: Annotated[str | None, Query(max_length=64)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="keyset cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeadLetterList:
    """Dead letters, newest first."""
    rows = await state.db.fetch_all(
        "SELECT id, projection, seq, event_id, chat_id, subject, error, retry_count, resolved, created_at, resolved_at"
        " FROM failed_messages WHERE (%(resolved)s::boolean IS NULL OR resolved = %(resolved)s::boolean)"
        " AND (%(projection)s::text IS NULL OR projection = %(projection)s::text)"
        " AND id < %(before)s ORDER BY id DESC LIMIT %(limit)s",
        {
            "resolved": resolved,
            "projection": projection.replace("\x00", "") if projection else None,
            "before": before_id or 2**63 - 1,
            "limit": limit + 1,
        },
    )
    more = len(rows) > limit
    items = [DeadLetter(**r) for r in rows[:limit]]
    return DeadLetterList(items=items, next_before_id=items[-1].id if more and items else None)


@router.post(
    "/{dead_letter_id}/retry",
    response_model=CommandAck,
    summary="Retry one dead letter",
    responses=problem_responses(404),
)
async def retry_one(dead_letter_id: DeadLetterId, state: State, admin: Admin) -> CommandAck:
    """Ask the projector to re-apply one dead letter."""
    row = await state.db.fetch_one(
        "SELECT id FROM failed_messages WHERE id = %s", (dead_letter_id,)
    )
    if row is None:
        raise NotFound("no such dead letter")
    reply = await ask_projector(
        state.log,
        RetryDeadLetters(dead_letter_ids=(dead_letter_id,), requested_by=admin.name),
        timeout_s=state.config.command_timeout_s,
    )
    return CommandAck.of(reply)


@router.post("/retry", response_model=CommandAck, summary="Retry every unresolved dead letter")
async def retry_all(state: State, admin: Admin) -> CommandAck:
    """Ask the projector to re-apply all unresolved dead letters."""
    reply = await ask_projector(
        state.log,
        RetryDeadLetters(all_unresolved=True, requested_by=admin.name),
        timeout_s=state.config.command_timeout_s,
    )
    return CommandAck.of(reply)
