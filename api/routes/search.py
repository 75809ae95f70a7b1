"""Full-text search across groups (Postgres ``tsvector``)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query

from api.deps import Consistent, State, User
from api.errors import ServiceUnavailable, problem_responses
from api.models import SearchHit, SearchResults
from api.routes.messages import COLUMNS, MAX_PAGE
from schemas.search import (
    SEARCH_DOCUMENT,
    SEARCH_INDEX_STATE_SQL,
    SearchIndexState,
    search_index_state_of,
)

router = APIRouter(prefix="/search", tags=["search"], responses=problem_responses(401, 422, 503))

# The document is spelled as the index spells it, so the index serves the match.
SEARCH_SQL: Final = f"""SELECT {COLUMNS}, ts_rank({SEARCH_DOCUMENT}, q) AS rank
    FROM messages, websearch_to_tsquery('simple', %(q)s) AS q
    WHERE {SEARCH_DOCUMENT} @@ q AND (%(chat)s::bigint IS NULL OR chat_id = %(chat)s::bigint)
      AND (%(deleted)s OR NOT is_deleted)
    ORDER BY rank DESC, date DESC, chat_id, message_id LIMIT %(limit)s"""

# After a rebuild the search index is built concurrently behind the swapped-in tables; without it a
# search would scan every message (docs/decisions/015-search-index-after-the-swap.md).
SEARCH_INDEX_RETRY_AFTER_S: Final = 30


async def search_index_state(state: State) -> SearchIndexState:
    """``ready``, ``building`` (after a rebuild, until the concurrent build is done) or ``missing``."""
    row = await state.db.fetch_one(SEARCH_INDEX_STATE_SQL)
    return search_index_state_of(None if row is None else row["state"])


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
    """Messages matching ``q``, best first; 503 while the search index is being built after a rebuild."""
    if await search_index_state(state) != "ready":
        raise ServiceUnavailable(
            "Search is unavailable while its index is being built after a rebuild of the tables; "
            f"messages can still be read. Try again in {SEARCH_INDEX_RETRY_AFTER_S} s.",
            retry_after_s=SEARCH_INDEX_RETRY_AFTER_S,
        )
    rows = await state.db.fetch_all(
        SEARCH_SQL,
        {"q": q.replace("\x00", ""), "chat": chat_id, "deleted": include_deleted, "limit": limit},
    )
    return SearchResults(items=[SearchHit(**r) for r in rows])
