"""Admin: status and lag, per-group status, errors, dead letters, crawl and restart commands, users."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telethon import errors as tg_errors

from eventlog import EventLog, Record
from projector.service import ProjectorService
from schemas.commands import INGEST_COMMANDS, Command, CommandReply
from schemas.events import Event, GapFillCompleted, IngestConnected
from tests.api.conftest import RunningApi, make_jwt
from tests.api.rows import insert_dead_letter, insert_group, insert_user, set_checkpoint
from tests.api.services import (
    Crawler,
    channel_message,
    running_crawler,
    running_projector,
    supergroup,
)
from tests.helpers import posted, wait_until
from tests.ingest.telegram.fakes import FakeGateway

CHAT = -1001234567890


@pytest.fixture
async def crawler(api: RunningApi, tmp_path: Path) -> AsyncIterator[Crawler]:
    """Real ingest: account ``main`` watching CHAT on the fake network, serving commands."""
    insert_group(api.database_url, CHAT, messages=12)
    gateway = FakeGateway(
        dialogs=[supergroup(CHAT)], chats={CHAT: [channel_message(CHAT, i) for i in (1, 2)]}
    )
    async with running_crawler(tmp_path, api.event_log, api.config.nats_url, gateway) as crawler:
        await wait_until(lambda: crawler.worker.status().backfills_pending == 0, timeout=15)
        yield crawler


@pytest.fixture
async def projector(api: RunningApi) -> AsyncIterator[ProjectorService]:
    """The real projector (Postgres projection only) on the API's database."""
    async with running_projector(api.event_log, api.database_url) as service:
        yield service


async def _events(log: EventLog) -> list[Event]:
    out: list[Event] = []
    async for batch in log.read(1):
        out.extend(r.event for r in batch if isinstance(r, Record))
    return out


async def test_status_reports_lag_per_projection(api: RunningApi) -> None:
    await api.event_log.append_many([posted(CHAT, i) for i in range(1, 11)])
    set_checkpoint(api.database_url, "postgres", 10)
    set_checkpoint(api.database_url, "duckdb", 4)
    set_checkpoint(api.database_url, "broadcast", 9)
    async with api.client() as client:
        body = (await client.get("/admin/status")).json()
    assert body["stream_last_seq"] == 10
    assert {p["name"]: p["lag"] for p in body["projections"]} == {
        "postgres": 0,
        "duckdb": 6,
        "broadcast": 1,
    }


async def test_status_says_crawler_not_running_when_ingest_is_absent(api: RunningApi) -> None:
    async with api.client() as client:
        body = (await client.get("/admin/status")).json()
    assert body["crawler"]["running"] is False
    assert body["crawler"]["message"] == "ingest is not running"


async def test_status_carries_what_the_ingest_worker_reports(
    api: RunningApi, crawler: Crawler
) -> None:
    async with api.client() as client:
        body = (await client.get("/admin/status")).json()
    runtime = body["crawler"]
    assert (runtime["running"], runtime["demo"], runtime["connected_accounts"]) == (True, False, 1)
    (account,) = runtime["accounts"]
    assert (account["account"], account["state"], account["connected"]) == (
        "main",
        "connected",
        True,
    )
    assert account["groups_watched"] == 1 and account["messages_received"] == 2
    assert runtime["sink"]["buffer_capacity"] > 0 and runtime["sink"]["log_connected"] is True
    assert (body["groups"], body["messages"]) == (1, 12)


async def test_status_lists_only_the_projections_the_projector_runs(
    api: RunningApi, projector: ProjectorService
) -> None:
    set_checkpoint(api.database_url, "broadcast", 0)  # disabled: an old checkpoint stays behind
    await api.event_log.append_many([posted(CHAT, i) for i in range(1, 4)])
    async with api.client() as client:
        body = (await client.get("/admin/status")).json()
    assert body["projector_running"] is True
    assert [p["name"] for p in body["projections"]] == ["postgres"]


async def test_group_status_shows_backfill_progress(api: RunningApi) -> None:
    insert_group(api.database_url, CHAT, backfill_fetched=30, backfill_total=120)
    async with api.client() as client:
        body = (await client.get("/admin/groups")).json()
    assert body["items"][0]["crawler"]["backfill_progress"] == 0.25


async def test_recent_errors_merge_crawler_and_projection_errors(api: RunningApi) -> None:
    insert_group(api.database_url, CHAT, last_error="FloodWait on GetHistory")
    insert_dead_letter(api.database_url, projection="postgres", seq=5, error="bad row")
    async with api.client() as client:
        body = (await client.get("/admin/errors")).json()
    assert [(e["source"], e["kind"], e["error"]) for e in body["items"]] == [
        ("projection", "postgres", "postgres: bad row"),
        ("crawler", None, "FloodWait on GetHistory"),
    ]


async def test_dead_letters_filter_by_resolved(api: RunningApi) -> None:
    open_id = insert_dead_letter(api.database_url, projection="postgres", seq=1)
    insert_dead_letter(api.database_url, projection="postgres", seq=2, resolved=True)
    async with api.client() as client:
        body = (await client.get("/admin/dead-letters", params={"resolved": False})).json()
    assert [d["id"] for d in body["items"]] == [open_id]


async def test_dead_letters_page_by_id(api: RunningApi) -> None:
    made = [insert_dead_letter(api.database_url, projection="duckdb", seq=s) for s in range(1, 6)]
    async with api.client() as client:
        first = (await client.get("/admin/dead-letters", params={"limit": 3})).json()
        second = (
            await client.get(
                "/admin/dead-letters", params={"limit": 3, "before_id": first["next_before_id"]}
            )
        ).json()
    assert [d["id"] for d in first["items"] + second["items"]] == made[::-1]
    assert second["next_before_id"] is None


async def test_retry_one_dead_letter_is_reapplied_by_the_projector(
    api: RunningApi, projector: ProjectorService
) -> None:
    dead_id = insert_dead_letter(api.database_url, projection="postgres", seq=3)  # payload {}
    insert_dead_letter(api.database_url, projection="postgres", seq=4)
    async with api.client() as client:
        body = (await client.post(f"/admin/dead-letters/{dead_id}/retry")).json()
    assert (body["ok"], body["resolved"], body["failed"]) == (False, 0, 1)


async def test_retry_all_dead_letters(api: RunningApi, projector: ProjectorService) -> None:
    insert_dead_letter(api.database_url, projection="postgres", seq=3)
    insert_dead_letter(api.database_url, projection="postgres", seq=4)
    async with api.client() as client:
        response = await client.post("/admin/dead-letters/retry")
    assert response.status_code == 200
    assert (response.json()["resolved"], response.json()["failed"]) == (0, 2)


async def test_retry_of_unknown_dead_letter_is_404(
    api: RunningApi, projector: ProjectorService
) -> None:
    async with api.client() as client:
        response = await client.post("/admin/dead-letters/999/retry")
    assert response.status_code == 404


async def test_retry_without_a_projector_is_503(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.post("/admin/dead-letters/retry")
    assert response.status_code == 503
    assert response.json()["detail"] == "projector is not running"


async def test_crawl_trigger_reaches_the_groups_account_worker(
    api: RunningApi, crawler: Crawler
) -> None:
    async with api.client() as client:
        response = await client.post(f"/admin/groups/{CHAT}/crawl", json={"mode": "gapfill"})
    assert response.json() == {
        "ok": True,
        "message": f"gapfill of {CHAT} queued",
        "resolved": None,
        "failed": None,
    }

    async def gap_filled() -> bool:
        return any(isinstance(e, GapFillCompleted) for e in await _events(api.event_log))

    await wait_until(gap_filled, timeout=15)


async def test_crawl_trigger_of_a_chat_the_account_does_not_watch_is_refused(
    api: RunningApi, crawler: Crawler
) -> None:
    other = CHAT - 1
    insert_group(api.database_url, other)
    async with api.client() as client:
        body = (await client.post(f"/admin/groups/{other}/crawl", json={"mode": "backfill"})).json()
    assert body["ok"] is False and "does not crawl" in body["message"]


async def test_crawl_trigger_for_an_account_no_ingest_serves_is_503(
    api: RunningApi, crawler: Crawler
) -> None:
    other = CHAT - 1
    insert_group(api.database_url, other, account="second")
    async with api.client() as client:
        response = await client.post(f"/admin/groups/{other}/crawl", json={"mode": "gapfill"})
    assert response.status_code == 503


async def test_crawl_trigger_of_unknown_group_is_404(api: RunningApi, crawler: Crawler) -> None:
    async with api.client() as client:
        response = await client.post(f"/admin/groups/{CHAT - 5}/crawl", json={"mode": "gapfill"})
    assert response.status_code == 404


async def test_crawl_trigger_with_bad_mode_is_422(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.post(f"/admin/groups/{CHAT}/crawl", json={"mode": "everything"})
    assert response.status_code == 422


async def test_crawl_trigger_without_ingest_is_503(api: RunningApi) -> None:
    insert_group(api.database_url, CHAT)
    async with api.client() as client:
        response = await client.post(f"/admin/groups/{CHAT}/crawl", json={"mode": "gapfill"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_crawl_trigger_times_out_as_503_when_ingest_hangs(api: RunningApi) -> None:
    insert_group(api.database_url, CHAT)
    release = asyncio.Event()

    async def hang(command: Command) -> CommandReply:
        await release.wait()
        return CommandReply(ok=True)

    server = await api.event_log.serve(f"{INGEST_COMMANDS}.>", hang)
    try:
        async with api.client() as client:
            response = await client.post(f"/admin/groups/{CHAT}/crawl", json={"mode": "gapfill"})
    finally:
        release.set()
        await server.stop()
    assert response.status_code == 503
    assert response.json()["detail"] == "ingest did not acknowledge in time"


async def test_restart_reconnects_the_worker(api: RunningApi, crawler: Crawler) -> None:
    async with api.client() as client:
        response = await client.post("/admin/crawler/restart")
    assert response.json()["ok"] is True
    await wait_until(lambda: sum(c == "connect" for c, _ in crawler.gateway.calls) == 2, timeout=15)

    async def reconnected() -> bool:
        events = await _events(api.event_log)
        return sum(isinstance(e, IngestConnected) for e in events) == 2

    await wait_until(reconnected, timeout=15)


async def test_users_are_listed_with_roles(api: RunningApi) -> None:
    a = insert_user(api.database_url, role="admin")
    u = insert_user(api.database_url, role="user")
    async with api.client() as client:
        body = (await client.get("/admin/users")).json()
    assert {(x["id"], x["role"]) for x in body["items"]} == {(str(a), "admin"), (str(u), "user")}


async def test_admin_changes_another_users_role(api: RunningApi) -> None:
    admin_id = insert_user(api.database_url, role="admin")
    user_id = insert_user(api.database_url, role="user")
    async with api.client(token=make_jwt(admin_id)) as client:
        response = await client.patch(f"/admin/users/{user_id}", json={"role": "admin"})
        check = await client.get("/me")
    assert response.json()["role"] == "admin"
    assert check.json()["role"] == "admin"


async def test_promoted_user_gains_admin_access(api: RunningApi) -> None:
    user_id = insert_user(api.database_url, role="user")
    async with api.client() as client:
        await client.patch(f"/admin/users/{user_id}", json={"role": "admin"})
    async with api.client(token=make_jwt(user_id)) as client:
        response = await client.get("/admin/users")
    assert response.status_code == 200


async def test_admin_cannot_change_own_role(api: RunningApi) -> None:
    admin_id = insert_user(api.database_url, role="admin")
    async with api.client(token=make_jwt(admin_id)) as client:
        response = await client.patch(f"/admin/users/{admin_id}", json={"role": "user"})
        still = await client.get("/admin/users")
    assert response.status_code == 403
    assert still.status_code == 200


async def test_role_change_of_unknown_user_is_404(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.patch(f"/admin/users/{uuid.uuid4()}", json={"role": "admin"})
    assert response.status_code == 404


async def test_the_last_admin_cannot_be_demoted(api: RunningApi) -> None:
    last_admin = insert_user(api.database_url, role="admin")
    async with api.client() as client:
        response = await client.patch(f"/admin/users/{last_admin}", json={"role": "user"})
        listed = (await client.get("/admin/users")).json()["items"]
    assert response.status_code == 409
    assert [u["role"] for u in listed] == ["admin"]


async def test_one_of_two_admins_can_be_demoted(api: RunningApi) -> None:
    first = insert_user(api.database_url, role="admin")
    insert_user(api.database_url, role="admin")
    async with api.client() as client:
        response = await client.patch(f"/admin/users/{first}", json={"role": "user"})
    assert response.json()["role"] == "user"


async def _group_crawler(api: RunningApi) -> dict[str, object]:
    async with api.client() as client:
        items = (await client.get("/admin/groups")).json()["items"]
    return next(i["crawler"] or {} for i in items if i["chat_id"] == CHAT)


async def test_a_failing_group_shows_its_error_and_recovers(
    api: RunningApi, crawler: Crawler, projector: ProjectorService
) -> None:
    crawler.gateway.fail["get_history"] = [tg_errors.ChannelPrivateError(request=None)]
    async with api.client() as client:
        assert (await client.post(f"/admin/groups/{CHAT}/crawl", json={"mode": "gapfill"})).json()[
            "ok"
        ]

    async def failed() -> bool:
        return (await _group_crawler(api)).get("status") == "error"

    await wait_until(failed, timeout=20)
    state = await _group_crawler(api)
    assert str(state["last_error"]).startswith("gap-fill failed: GatewayError")
    async with api.client() as client:
        errors = (await client.get("/admin/errors")).json()["items"]
        assert [(e["source"], e["kind"], e["chat_id"]) for e in errors][:1] == [
            ("crawler", "gap-fill", CHAT)
        ]
        await client.post(f"/admin/groups/{CHAT}/crawl", json={"mode": "gapfill"})

    async def recovered() -> bool:
        return (await _group_crawler(api)).get("status") == "active"

    await wait_until(recovered, timeout=20)
