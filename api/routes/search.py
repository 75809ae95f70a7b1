"""Full-text search across groups (Postgres ``tsvector``)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query

from api.deps import Consistent, State, User
from api.errors import problem_responses
from api.models import SearchHit, SearchResults
from api.routes.messages import COLUMNS, MAX_PAGE

router = APIRouter(prefix="/search", tags=["search"], responses=problem_responses(401, 422, 503))

_SQL: Final = f"""SELECT {COLUMNS}, ts_rank(search, q) AS rank
    FROM messages, websearch_to_tsquery('simple', %(q)s) AS q
    WHERE search @@ q AND (%(chat)s::bigint IS NULL OR chat_id = %(chat)s::bigint)
      AND (%(deleted)s OR NOT is_deleted)
    ORDER BY rank DESC, date DESC, chat_id, message_id LIMIT %(limit)s"""


@router.get("", response_model=SearchResults, dependencies=[Consistent], summary="Search messages")
async def search(
    state: State,
    _user: User,
    q: Annotated[
        str,
        Query(
            min_length=1, max_length=500, description='web-search syntax: words, "phrases", -not'
        ),
    ],
    chat_id: Annotated[int | None, Query(ge=-(2**63), le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    include_deleted: bool = False,
) -> SearchResults:
    """Messages matching ``q``, best first."""
    rows = await state.db.fetch_all(
        _SQL,
        {"q": q.replace("\x00", ""), "chat": chat_id, "deleted": include_deleted, "limit": limit},
    )
    return SearchResults(items=[SearchHit(**r) for r in rows])
