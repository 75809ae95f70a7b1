"""Analytics cannot take more than its share (issue 15, item 6).

Replayed against the API as its entry points run it: a result far larger than any page (a 169 MB
response after 29 s, +1 GB), rows whose conversion ran after the time limit, DuckDB at 80 % of RAM,
and analytics sharing the event loop's one thread pool with the projector and ingest.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import ADMIN_TOKEN, write_snapshot
from tests.helpers import wait_until
from tests.security.conftest import StartApi

pytestmark = pytest.mark.timeout(120)

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def admin_sql(url: str, sql: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=60) as client:
        return await client.post("/analytics/sql", json={"sql": sql})


@pytest.fixture
def snapshot(tmp_path: Path) -> None:
    """A published analytics snapshot where the API looks for it."""
    write_snapshot(tmp_path / "snapshots", "s1.duckdb", [])


async def test_a_result_over_the_response_limit_is_refused_in_words(
    start_bounded_api: StartApi, snapshot: None
) -> None:
    api = await start_bounded_api({"sql_max_response_bytes": 64 * 1024, "sql_row_cap": 10_000})
    response = await admin_sql(api.url, "SELECT repeat('x', 1000) AS big FROM range(1000)")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "larger than the 65536-byte response limit" in response.json()["detail"]


async def test_a_result_under_the_limit_is_served_whole(
    start_bounded_api: StartApi, snapshot: None
) -> None:
    api = await start_bounded_api({"sql_max_response_bytes": 64 * 1024})
    response = await admin_sql(api.url, "SELECT i FROM range(10) t(i)")
    assert response.status_code == 200
    assert response.json()["rows"] == [[i] for i in range(10)]


async def test_the_time_limit_covers_converting_the_rows(
    start_bounded_api: StartApi, snapshot: None
) -> None:
    # DuckDB hands over 4M list elements quickly; turning them into JSON values takes seconds.
    api = await start_bounded_api({"sql_timeout_s": 1.0, "sql_max_response_bytes": 2**30})
    response = await admin_sql(api.url, "SELECT range(0, 40000) AS l FROM range(100)")
    assert response.status_code == 400
    assert "exceeded 1.0s" in response.json()["detail"]


async def test_duckdb_runs_with_the_configured_memory_and_threads(
    start_bounded_api: StartApi, snapshot: None
) -> None:
    api = await start_bounded_api({"analytics_memory_limit": "256MB", "analytics_threads": 1})
    response = await admin_sql(
        api.url, "SELECT current_setting('memory_limit'), current_setting('threads')"
    )
    assert response.status_code == 200
    assert response.json()["rows"] == [["244.1 MiB", 1]]


def query_threads() -> int:
    """Threads of the analytics pool, or of the loop's default pool (where queries used to run)."""
    return sum(t.name.startswith(("analytics", "asyncio_")) for t in threading.enumerate())


async def test_slow_analytics_leave_the_shared_thread_pool_free(
    start_bounded_api: StartApi, snapshot: None
) -> None:
    api = await start_bounded_api({"sql_timeout_s": 1.5, "analytics_threads": 2})
    slow = "SELECT count(*) FROM range(100000000000) a"
    queries = [asyncio.create_task(admin_sql(api.url, slow)) for _ in range(8)]
    try:
        await wait_until(lambda: query_threads() >= 2, timeout=10)  # queries reached threads
        # The projector's and ingest's blocking calls use this pool; it must not wait for analytics.
        await asyncio.wait_for(asyncio.to_thread(lambda: None), timeout=1.0)
        still_running = sum(not q.done() for q in queries)
    finally:
        responses = await asyncio.gather(*queries)
    assert still_running > 0
    assert {r.status_code for r in responses} == {400}
