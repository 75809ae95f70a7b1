"""The full-text search index of ``public.messages``: built after a rebuild's swap, concurrently.

A rebuild swaps its tables in without the GIN search index (building it first kept the old tables
serving stale rows for minutes at millions of messages); the index is then built with
``CREATE INDEX CONCURRENTLY`` while readers and the live projector carry on, and search answers
503 until it is valid (docs/decisions/015-search-index-after-the-swap.md). A build that died
leaves an invalid index behind: it is dropped and built again.
"""

from __future__ import annotations

import logging
import time
from typing import Final

import psycopg

from projector.errors import ProjectionUnavailable
from schemas.search import (
    SEARCH_DOCUMENT,
    SEARCH_INDEX,
    SEARCH_INDEX_STATE_SQL,
    SearchIndexState,
    search_index_state_of,
)

log = logging.getLogger(__name__)

# Same definition as the migration, built without blocking writes.
_CREATE: Final = (
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {SEARCH_INDEX} ON public.messages "
    f"USING gin ({SEARCH_DOCUMENT})"
)
_DROP: Final = f"DROP INDEX CONCURRENTLY IF EXISTS public.{SEARCH_INDEX}"
_BUILD_LOCK_KEY: Final = 0x61616C746F736561  # advisory lock: one search-index build at a time


async def search_index_state(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> SearchIndexState:
    """Whether search can use the index now."""
    row = await (await conn.execute(SEARCH_INDEX_STATE_SQL)).fetchone()
    return search_index_state_of(None if row is None else row[0])


async def ensure_search_index(database_url: str) -> float:
    """Build the search index concurrently unless it is valid already; returns the seconds spent building.

    Safe to call from several processes (one builds, the others wait for it and find it ready).
    """
    started = time.perf_counter()
    try:
        async with await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, connect_timeout=10
        ) as conn:
            await conn.execute("SET statement_timeout = 0")
            await conn.execute("SELECT pg_advisory_lock(%s)", (_BUILD_LOCK_KEY,))
            try:
                state = await search_index_state(conn)
                if state == "ready":
                    return 0.0
                if state == "building":
                    # Nobody else builds (we hold the lock): a build died and left it invalid.
                    log.warning("search index is invalid (a build died); building it again")
                    await conn.execute(_DROP)
                log.info("building the search index concurrently; search answers 503 until ready")
                await conn.execute(_CREATE)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_BUILD_LOCK_KEY,))
    except psycopg.OperationalError as e:
        raise ProjectionUnavailable(f"postgres: {type(e).__name__}") from e
    elapsed = time.perf_counter() - started
    log.info("search index ready after %.1fs", elapsed)
    return elapsed


async def keep_search_index(database_url: str) -> None:
    """At projector start: build the search index if a rebuild died before it was ready; never raises."""
    try:
        await ensure_search_index(database_url)
    except (ProjectionUnavailable, psycopg.Error) as e:
        log.warning("could not build the search index (%s); search answers 503", e)
