"""The dead-letter store shared by the projections and the retry command."""

from __future__ import annotations

import asyncio

import psycopg

from projector.deadletter import DeadLetterStore
from tests.helpers import wait_until


def other_backends(url: str) -> int:
    """Connections to the database of ``url`` other than the one asking."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


async def test_callers_at_once_share_one_connection_that_close_ends(migrated_url: str) -> None:
    store = DeadLetterStore(database_url=migrated_url)
    try:
        await asyncio.gather(*(store.report_progress(f"p{i}", i, 1) for i in range(5)))
        assert other_backends(migrated_url) == 1
    finally:
        await store.close()
    await wait_until(lambda: other_backends(migrated_url) == 0, timeout=10)
