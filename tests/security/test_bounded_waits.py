"""``?min_seq=`` waits are cheap and only for callers (issue 15, item 6).

Replayed against the API as its entry points run it over a real Postgres: 200 readers wait at
once for a seq the projection has not applied. They used to poll Postgres each for the whole wait;
now one watch polls for all, so the database sees a few dozen transactions, not thousands.
"""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from tests.api.conftest import ADMIN_TOKEN
from tests.api.rows import set_checkpoint
from tests.security.conftest import StartApi

pytestmark = pytest.mark.timeout(120)

WAITERS = 200


def committed_transactions(database_url: str) -> int:
    """Transactions committed in the database so far (flushed statistics)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_many_min_seq_waits_cost_one_shared_poll(
    start_bounded_api: StartApi, migrated_db: str
) -> None:
    set_checkpoint(migrated_db, "postgres", 5)
    api = await start_bounded_api({"min_seq_wait_s": 1.0, "db_pool_max": 20})
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    limits = httpx.Limits(max_connections=WAITERS)
    before = committed_transactions(migrated_db)
    async with httpx.AsyncClient(base_url=api.url, headers=headers, limits=limits, timeout=30) as c:
        responses = await asyncio.gather(
            *(c.get("/groups", params={"min_seq": 50}) for _ in range(WAITERS))
        )
    await api.stop()  # the pool's backends exit, which flushes their statistics
    spent = committed_transactions(migrated_db) - before
    assert {r.status_code for r in responses} == {503}
    assert all("has not applied seq 50" in r.json()["detail"] for r in responses)
    assert spent < 400, f"{spent} transactions for {WAITERS} one-second waits"


async def test_a_min_seq_wait_is_answered_when_the_seq_is_applied(
    start_bounded_api: StartApi, migrated_db: str
) -> None:
    set_checkpoint(migrated_db, "postgres", 5)
    api = await start_bounded_api({"min_seq_wait_s": 30.0})
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=20) as client:
        waiting = [
            asyncio.create_task(client.get("/groups", params={"min_seq": s})) for s in (6, 7)
        ]
        set_checkpoint(migrated_db, "postgres", 7)
        responses = await asyncio.gather(*waiting)
    assert [r.status_code for r in responses] == [200, 200]


async def test_an_unauthenticated_min_seq_request_is_refused_without_waiting(
    start_bounded_api: StartApi, migrated_db: str
) -> None:
    set_checkpoint(migrated_db, "postgres", 5)
    api = await start_bounded_api({"min_seq_wait_s": 60.0})
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
        response = await client.get("/groups", params={"min_seq": 50})
    assert response.status_code == 401
