"""Groups with their crawler status."""

from __future__ import annotations

from tests.api.conftest import RunningApi
from tests.api.rows import insert_group

CHAT = -1001234567890


async def test_groups_list_carries_crawler_status_and_backfill_progress(api: RunningApi) -> None:
    insert_group(api.database_url, CHAT, title="Alpha", backfill_fetched=50, backfill_total=200)
    insert_group(api.database_url, -1009, title="Beta", status=None)
    async with api.client() as client:
        response = await client.get("/groups")
    assert response.status_code == 200
    items = {g["chat_id"]: g for g in response.json()["items"]}
    assert items[CHAT]["crawler"]["status"] == "active"
    assert items[CHAT]["crawler"]["backfill_progress"] == 0.25
    assert items[-1009]["crawler"] is None


async def test_group_by_id_returns_the_group(api: RunningApi) -> None:
    insert_group(api.database_url, CHAT, title="Alpha")
    async with api.client() as client:
        response = await client.get(f"/groups/{CHAT}")
    assert response.json()["title"] == "Alpha"


async def test_unknown_group_is_a_404_problem(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.get("/groups/-1005")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not Found"


async def test_a_group_shows_its_photo_and_migration_link(api: RunningApi) -> None:
    insert_group(api.database_url, -4242, title="Basic")
    api.sql(
        "UPDATE telegram_groups SET photo_id = 77, migrated_to_chat_id = %s WHERE chat_id = -4242",
        (CHAT,),
    )
    async with api.client() as client:
        body = (await client.get("/groups/-4242")).json()
    assert (body["photo_id"], body["migrated_to_chat_id"]) == (77, CHAT)
