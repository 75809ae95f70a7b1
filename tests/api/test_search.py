"""Full-text search across groups."""

from __future__ import annotations

import psycopg

from api.routes.search import SEARCH_SQL
from projector.postgres.search_index import ensure_search_index
from tests.api.conftest import RunningApi
from tests.api.rows import insert_messages
from tests.projector.test_search_index import leave_an_invalid_search_index


async def test_search_finds_matching_messages_across_groups(api: RunningApi) -> None:
    insert_messages(api.database_url, -1001, [1, 2], text="aalto sauna {id}")
    insert_messages(api.database_url, -1002, [1], text="aalto sauna again {id}")
    insert_messages(api.database_url, -1002, [2], text="unrelated {id}")
    async with api.client() as client:
        body = (await client.get("/search", params={"q": "sauna"})).json()
    assert sorted((m["chat_id"], m["message_id"]) for m in body["items"]) == [
        (-1002, 1),
        (-1001, 1),
        (-1001, 2),
    ]


async def test_search_can_be_limited_to_one_group(api: RunningApi) -> None:
    insert_messages(api.database_url, -1001, [1], text="sauna")
    insert_messages(api.database_url, -1002, [1], text="sauna")
    async with api.client() as client:
        body = (await client.get("/search", params={"q": "sauna", "chat_id": -1002})).json()
    assert [m["chat_id"] for m in body["items"]] == [-1002]


async def test_search_hides_deleted_messages(api: RunningApi) -> None:
    insert_messages(api.database_url, -1001, [1, 2], text="sauna {id}", deleted={1})
    async with api.client() as client:
        body = (await client.get("/search", params={"q": "sauna"})).json()
    assert [m["message_id"] for m in body["items"]] == [2]


async def test_search_without_query_is_422(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.get("/search")
    assert response.status_code == 422


async def test_search_answers_503_with_retry_after_while_its_index_is_built(
    api: RunningApi,
) -> None:
    insert_messages(api.database_url, -1001, [1, 2], text="sauna {id}")
    leave_an_invalid_search_index(api.database_url)
    async with api.client() as client:
        response = await client.get("/search", params={"q": "sauna"})
        status = (await client.get("/admin/status")).json()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "index is being built" in response.json()["detail"]
    assert status["search_index"] == "building"


async def test_search_is_back_once_the_index_is_built(api: RunningApi) -> None:
    insert_messages(api.database_url, -1001, [1, 2], text="sauna {id}")
    leave_an_invalid_search_index(api.database_url)
    await ensure_search_index(api.database_url)
    async with api.client() as client:
        response = await client.get("/search", params={"q": "sauna"})
        status = (await client.get("/admin/status")).json()
    assert sorted(m["message_id"] for m in response.json()["items"]) == [1, 2]
    assert status["search_index"] == "ready"


def test_the_search_query_is_served_by_the_search_index(migrated_db: str) -> None:
    # The document is an expression: a query spelling it differently would scan every message.
    insert_messages(migrated_db, -1001, range(1, 201), text="sauna {id}")
    with psycopg.connect(migrated_db) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            ("EXPLAIN " + SEARCH_SQL).encode(),
            {"q": "sauna", "chat": None, "deleted": False, "limit": 10},
        ).fetchall()
    assert "messages_search_idx" in "\n".join(str(r[0]) for r in plan)
