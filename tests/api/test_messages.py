"""Messages: keyset pages, tombstones, edit history, read-your-writes with ``min_seq``."""

from __future__ import annotations

import asyncio

import psycopg

from schemas.events import Button, MessagePosted, MessageSnapshot
from schemas.ids import posted_id
from tests.api.conftest import RunningApi
from tests.api.rows import BASE_DATE, insert_group, insert_messages, insert_version, set_checkpoint
from tests.projector.conftest import project_to_end

CHAT = -1001234567890


def ids(response_json: dict[str, object]) -> list[int]:
    items = response_json["items"]
    assert isinstance(items, list)
    return [m["message_id"] for m in items]


async def test_first_page_is_newest_first(api: RunningApi) -> None:
    insert_messages(api.database_url, CHAT, range(1, 11))
    async with api.client() as client:
        body = (await client.get(f"/groups/{CHAT}/messages", params={"limit": 3})).json()
    assert ids(body) == [10, 9, 8]
    assert body["has_more"] is True
    assert body["next_before"] == 8


async def test_before_cursor_walks_to_the_oldest_without_overlap(api: RunningApi) -> None:
    insert_messages(api.database_url, CHAT, range(1, 8))
    seen: list[int] = []
    async with api.client() as client:
        params: dict[str, int] = {"limit": 3}
        while True:
            body = (await client.get(f"/groups/{CHAT}/messages", params=params)).json()
            seen += ids(body)
            if not body["has_more"]:
                break
            params = {"limit": 3, "before": body["next_before"]}
    assert seen == [7, 6, 5, 4, 3, 2, 1]


async def test_page_of_exactly_limit_reports_no_more(api: RunningApi) -> None:
    insert_messages(api.database_url, CHAT, range(1, 4))
    async with api.client() as client:
        body = (await client.get(f"/groups/{CHAT}/messages", params={"limit": 3})).json()
    assert ids(body) == [3, 2, 1]
    assert body["has_more"] is False


async def test_after_cursor_returns_the_next_newer_messages(api: RunningApi) -> None:
    insert_messages(api.database_url, CHAT, range(1, 11))
    async with api.client() as client:
        body = (
            await client.get(f"/groups/{CHAT}/messages", params={"after": 4, "limit": 3})
        ).json()
    assert ids(body) == [7, 6, 5]
    assert body["has_more"] is True
    assert body["next_after"] == 7


async def test_before_and_after_bound_a_range(api: RunningApi) -> None:
    insert_messages(api.database_url, CHAT, range(1, 11))
    async with api.client() as client:
        body = (
            await client.get(f"/groups/{CHAT}/messages", params={"after": 3, "before": 6})
        ).json()
    assert ids(body) == [5, 4]


async def test_empty_group_gives_an_empty_page(api: RunningApi) -> None:
    async with api.client() as client:
        body = (await client.get(f"/groups/{CHAT}/messages")).json()
    assert body == {"items": [], "has_more": False, "next_before": None, "next_after": None}


async def test_limit_above_200_is_a_422_problem(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.get(f"/groups/{CHAT}/messages", params={"limit": 201})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["query", "limit"]


async def test_deleted_messages_are_hidden_by_default(api: RunningApi) -> None:
    insert_messages(api.database_url, CHAT, range(1, 5), deleted={2, 3})
    async with api.client() as client:
        body = (await client.get(f"/groups/{CHAT}/messages")).json()
    assert ids(body) == [4, 1]


async def test_deleted_messages_are_shown_when_asked(api: RunningApi) -> None:
    insert_messages(api.database_url, CHAT, range(1, 5), deleted={2})
    async with api.client() as client:
        body = (
            await client.get(f"/groups/{CHAT}/messages", params={"include_deleted": True})
        ).json()
    assert ids(body) == [4, 3, 2, 1]
    assert [m["is_deleted"] for m in body["items"]] == [False, False, True, False]


async def test_message_carries_its_edit_history_oldest_first(api: RunningApi) -> None:
    insert_messages(api.database_url, CHAT, [7], text="v2")
    insert_version(api.database_url, CHAT, 7, text="v2", seq=9, edited=True)
    insert_version(api.database_url, CHAT, 7, text="v1", seq=3, edited=False)
    async with api.client() as client:
        body = (await client.get(f"/groups/{CHAT}/messages/7")).json()
    assert body["text"] == "v2"
    assert [v["text"] for v in body["versions"]] == ["v1", "v2"]


async def test_unedited_message_has_its_first_sighting_as_its_one_version(
    api: RunningApi,
) -> None:
    with psycopg.connect(api.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO messages (chat_id, message_id, account, date, text, source, first_seq, "
            "last_seq, observed_at, content_hash, first_observed_at, first_media) VALUES "
            "(%s, 8, 'main', now(), 'only', 'live', 4, 6, now(), 'h4', %s, '{\"type\": \"photo\"}')",
            (CHAT, BASE_DATE),
        )
    async with api.client() as client:
        body = (await client.get(f"/groups/{CHAT}/messages/8")).json()
    assert body["versions"] == [
        {
            "content_hash": "h4",
            "text": "only",
            "media": {"type": "photo"},
            "edit_date": None,
            "seq": 4,
            "observed_at": BASE_DATE.isoformat().replace("+00:00", "Z"),
        }
    ]


async def test_basic_group_message_is_the_named_accounts(api: RunningApi) -> None:
    group = -4242
    with psycopg.connect(api.database_url, autocommit=True) as conn:
        for account in ("a", "b"):
            conn.execute(
                "INSERT INTO messages (chat_id, id_scope, message_id, account, date, text, source, "
                "first_seq, last_seq, observed_at) VALUES (%s, %s, 5, %s, now(), %s, 'live', 1, 1, "
                "now())",
                (group, account, account, f"{account}'s fifth"),
            )
    async with api.client() as client:
        named = (await client.get(f"/groups/{group}/messages/5", params={"account": "b"})).json()
        default = (await client.get(f"/groups/{group}/messages/5")).json()
    assert (named["text"], named["account"], default["account"]) == ("b's fifth", "b", "a")


async def test_unknown_message_is_404(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.get(f"/groups/{CHAT}/messages/99")
    assert response.status_code == 404


async def test_min_seq_waits_until_the_projection_applied_it(api: RunningApi) -> None:
    set_checkpoint(api.database_url, "postgres", 5)
    async with api.client() as client:
        request = asyncio.create_task(client.get("/groups", params={"min_seq": 6}))
        insert_group(api.database_url, CHAT, title="Written")
        set_checkpoint(api.database_url, "postgres", 6)
        response = await request
    assert response.status_code == 200
    assert [g["title"] for g in response.json()["items"]] == ["Written"]


async def test_min_seq_not_reached_in_time_is_a_503_problem(api: RunningApi) -> None:
    set_checkpoint(api.database_url, "postgres", 5)
    insert_group(api.database_url, CHAT)
    async with api.client() as client:
        response = await client.get(f"/groups/{CHAT}/messages", params={"min_seq": 50})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "Retry-After" in response.headers


async def test_pre_migration_ids_below_zero_are_listed(api: RunningApi) -> None:
    insert_messages(api.database_url, CHAT, [-999_999_998, -999_999_999, 1])
    async with api.client() as client:
        page = (await client.get(f"/groups/{CHAT}/messages")).json()
        one = await client.get(f"/groups/{CHAT}/messages/-999999998")
    assert ids(page) == [1, -999_999_998, -999_999_999]
    assert one.status_code == 200


async def test_message_shows_its_buttons_and_via_bot_name(api: RunningApi) -> None:
    snapshot = MessageSnapshot(
        message_id=7,
        date=BASE_DATE,
        text="pick one",
        via_bot_name="votebot",
        buttons=((Button(text="Site", url="https://example.org"), Button(text="Yes")),),
    )
    await api.event_log.append(
        MessagePosted(
            event_id=posted_id(CHAT, 7, account="main"),
            account="main",
            observed_at=BASE_DATE,
            source="live",
            chat_id=CHAT,
            message=snapshot,
        )
    )
    await project_to_end(api.event_log, api.database_url)
    async with api.client() as client:
        body = (await client.get(f"/groups/{CHAT}/messages/7")).json()
    assert body["via_bot_name"] == "votebot"
    assert body["buttons"] == [[{"text": "Site", "url": "https://example.org"}, {"text": "Yes"}]]
