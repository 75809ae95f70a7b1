"""The search index after a rebuild: the tables swap in first, the index follows, built concurrently."""

from __future__ import annotations

import psycopg

from eventlog import EventLog
from projector.postgres.search_index import ensure_search_index
from projector.rebuild_postgres import rebuild_postgres
from schemas.search import SEARCH_INDEX_STATE_SQL
from tests.factories import CHAN
from tests.helpers import posted


def _state_and_rows(database_url: str) -> tuple[str, int]:
    with psycopg.connect(database_url) as conn:
        state = conn.execute(SEARCH_INDEX_STATE_SQL).fetchone()
        rows = conn.execute("SELECT count(*) FROM messages").fetchone()
    assert state is not None and rows is not None
    return str(state[0]), int(rows[0])


def leave_an_invalid_search_index(database_url: str) -> None:
    """What a search-index build that died leaves behind: an index of that name, not valid."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS messages_search_idx")
        try:  # every row has the same chat_id: the unique build fails and leaves an invalid index
            conn.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY messages_search_idx ON messages (chat_id)"
            )
        except psycopg.errors.UniqueViolation:
            pass


async def test_rebuild_swaps_the_tables_in_before_the_search_index_is_built(
    event_log: EventLog, migrated_url: str
) -> None:
    await event_log.append_many([posted(CHAN, i, text=f"sauna {i}") for i in range(1, 301)])
    at_swap: list[tuple[str, int]] = []

    def progress(line: str) -> None:
        if "building the search index" in line:
            at_swap.append(_state_and_rows(migrated_url))

    result = await rebuild_postgres(log_=event_log, database_url=migrated_url, on_progress=progress)
    assert at_swap == [("missing", 300)]  # readers had the rebuilt rows before the index
    assert _state_and_rows(migrated_url) == ("ready", 300)
    assert result.search_index_s > 0


async def test_an_index_left_invalid_by_a_dead_build_is_built_again(
    event_log: EventLog, migrated_url: str
) -> None:
    await event_log.append_many([posted(CHAN, i) for i in range(1, 4)])
    await rebuild_postgres(log_=event_log, database_url=migrated_url)
    leave_an_invalid_search_index(migrated_url)
    assert _state_and_rows(migrated_url)[0] == "building"
    await ensure_search_index(migrated_url)
    assert _state_and_rows(migrated_url)[0] == "ready"
    with psycopg.connect(migrated_url) as conn:
        row = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'messages_search_idx'"
        ).fetchone()
    assert row is not None and "gin (to_tsvector('simple'::regconfig, text))" in str(row[0])
