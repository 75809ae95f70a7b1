"""Analytics over published DuckDB snapshots, and the admin ad-hoc SQL endpoint."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from api.analytics import SnapshotReader
from schemas.duckdb.queries import ANALYTICS_QUERIES
from tests.api.conftest import RunningApi, make_jwt, write_snapshot
from tests.api.rows import insert_user
from tests.helpers import wait_until

D1 = datetime(2026, 11, 1, 10, tzinfo=UTC)
D2 = datetime(2026, 11, 2, 10, tzinfo=UTC)
ROWS = [
    (-1001, 1, 7, D1, "a", False),
    (-1001, 2, 7, D2, "b", False),
    (-1002, 1, 8, D1, "c", False),
    (-1002, 2, 8, D1, "gone", True),
]


async def test_query_listing_names_every_query(api: RunningApi) -> None:
    async with api.client() as client:
        body = (await client.get("/analytics")).json()
    assert {q["name"] for q in body} == set(ANALYTICS_QUERIES)


async def test_query_runs_on_the_current_snapshot(api: RunningApi) -> None:
    name = write_snapshot(api.config.duckdb_snapshot_dir, "snap-1.duckdb", ROWS)
    async with api.client() as client:
        body = (await client.get("/analytics/top_senders")).json()
    assert body["columns"] == ["chat_id", "sender_id", "messages", "rank"]
    assert [-1001, 7, 2, 1] in body["rows"]
    assert body["snapshot"] == name


async def test_query_filters_by_chat_and_time(api: RunningApi) -> None:
    write_snapshot(api.config.duckdb_snapshot_dir, "snap-1.duckdb", ROWS)
    async with api.client() as client:
        body = (
            await client.get(
                "/analytics/messages_per_day",
                params={
                    "chat_id": -1001,
                    "since": "2026-11-02T00:00:00Z",
                    "until": "2026-11-03T00:00:00Z",
                },
            )
        ).json()
    assert body["rows"] == [[-1001, "2026-11-02", 1]]


async def test_a_new_snapshot_is_picked_up_when_current_changes(api: RunningApi) -> None:
    one = write_snapshot(api.config.duckdb_snapshot_dir, "snap-1.duckdb", ROWS[:1])
    async with api.client() as client:
        first = (await client.get("/analytics/top_senders")).json()
        two = write_snapshot(api.config.duckdb_snapshot_dir, "snap-2.duckdb", ROWS)
        second = (await client.get("/analytics/top_senders")).json()
    assert (first["snapshot"], first["rows"]) == (one, [[-1001, 7, 1, 1]])
    assert second["snapshot"] == two
    assert [-1001, 7, 2, 1] in second["rows"]


async def test_no_snapshot_yet_is_503(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.get("/analytics/top_senders")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_admin_sql_returns_rows(api: RunningApi) -> None:
    write_snapshot(api.config.duckdb_snapshot_dir, "snap-1.duckdb", ROWS)
    async with api.client() as client:
        body = (
            await client.post("/analytics/sql", json={"sql": "SELECT count(*) AS n FROM messages"})
        ).json()
    assert body["rows"] == [[4]]


async def test_admin_sql_is_capped_at_the_row_limit(api: RunningApi) -> None:
    write_snapshot(api.config.duckdb_snapshot_dir, "snap-1.duckdb", ROWS)
    async with api.client() as client:
        body = (
            await client.post("/analytics/sql", json={"sql": "SELECT * FROM range(1000)"})
        ).json()
    assert len(body["rows"]) == api.config.sql_row_cap
    assert body["truncated"] is True


async def test_admin_sql_rejects_writes(api: RunningApi) -> None:
    write_snapshot(api.config.duckdb_snapshot_dir, "snap-1.duckdb", ROWS)
    async with api.client() as client:
        responses = [
            await client.post("/analytics/sql", json={"sql": sql})
            for sql in (
                "DELETE FROM messages",
                "SELECT 1; DROP TABLE messages",
                "COPY messages TO 'x.csv'",
                "ATTACH 'other.duckdb'",
            )
        ]
    assert [r.status_code for r in responses] == [400, 400, 400, 400]


async def test_admin_sql_cannot_read_files(api: RunningApi) -> None:
    write_snapshot(api.config.duckdb_snapshot_dir, "snap-1.duckdb", ROWS)
    async with api.client() as client:
        response = await client.post(
            "/analytics/sql", json={"sql": "SELECT * FROM read_text('/etc/hostname')"}
        )
    assert response.status_code == 400


async def test_admin_sql_is_interrupted_after_the_time_limit(api: RunningApi) -> None:
    write_snapshot(api.config.duckdb_snapshot_dir, "snap-1.duckdb", ROWS)
    sql = "SELECT count(*) FROM range(100000000000) a(x) WHERE hash(x) = 0"
    async with api.client() as client:
        response = await client.post("/analytics/sql", json={"sql": sql})
    assert response.status_code == 400
    assert "exceeded" in response.json()["detail"]


async def test_admin_sql_is_forbidden_for_users(api: RunningApi) -> None:
    user_id = insert_user(api.database_url, role="user")
    async with api.client(token=make_jwt(user_id)) as client:
        response = await client.post("/analytics/sql", json={"sql": "SELECT 1"})
    assert response.status_code == 403


async def test_named_queries_are_open_to_users(api: RunningApi) -> None:
    write_snapshot(api.config.duckdb_snapshot_dir, "snap-1.duckdb", ROWS)
    user_id = insert_user(api.database_url, role="user")
    async with api.client(token=make_jwt(user_id)) as client:
        response = await client.get("/analytics/top_senders")
    assert response.status_code == 200


async def test_a_query_running_across_a_snapshot_swap_completes(tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    one = write_snapshot(snapshots, "snap-1.duckdb", ROWS)
    reader = SnapshotReader(snapshots)
    slow = "SELECT count(*) AS n FROM range(50000000) a(x) WHERE hash(x) % 7 = 0"
    try:
        running = asyncio.create_task(reader.query(slow, None, row_cap=10, timeout_s=60))
        await wait_until(lambda: reader._snap is not None and reader._snap.users == 1, timeout=10)
        two = write_snapshot(snapshots, "snap-2.duckdb", ROWS)
        swapped = await reader.query(
            "SELECT count(*) FROM messages", None, row_cap=10, timeout_s=10
        )
        first = await running
    finally:
        reader.close()
    assert swapped.snapshot == two
    assert (first.snapshot, first.columns) == (one, ["n"])


async def test_admin_sql_reads_no_file_outside_the_dataset(api: RunningApi) -> None:
    write_snapshot(api.config.duckdb_snapshot_dir, "snap-1.duckdb", ROWS)
    outside = api.config.duckdb_snapshot_dir.parent / "snap-1.duckdb"
    async with api.client() as client:
        response = await client.post(
            "/analytics/sql", json={"sql": f"SELECT * FROM read_blob('{outside}')"}
        )
    assert response.status_code == 400
